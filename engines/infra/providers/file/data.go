package fileprovider

import (
	"context"
	"fmt"

	"github.com/cairnhq/cairn/engines/infra/provider"
)

// fileData is the file data source: it reads a UTF-8 text file the
// configuration does not manage.
type fileData struct{}

var _ provider.DataSource = fileData{}

func (fileData) Schema() *provider.Schema {
	return &provider.Schema{
		Description: "Reads a UTF-8 text file (up to 1 MiB).",
		Attributes: map[string]*provider.Attribute{
			"path":    {Type: provider.String, Required: true, Description: "The file's absolute path."},
			"content": {Type: provider.String, Computed: true, Description: "The file's content."},
			"sha256":  {Type: provider.String, Computed: true, Description: "The SHA-256 of the content, in hex."},
			"mode":    {Type: provider.String, Computed: true, Description: "Permission bits as four octal digits."},
			"owner":   {Type: provider.String, Computed: true, Description: "The owner as \"user:group\"."},
		},
	}
}

func (fileData) read(ctx context.Context, s provider.Session, args provider.Values) (provider.Values, error) {
	path := args.String("path")
	if err := checkPath(path); err != nil {
		return nil, err
	}
	v, found, err := readFile(path)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("file %s does not exist", path)
	}
	return v, nil
}
