package build

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// applyConfig applies an instruction that changes only the image's
// config.
func applyConfig(cfg *v1.ConfigFile, c instructions.Command) error {
	conf := &cfg.Config
	switch c := c.(type) {
	case *instructions.EnvCommand:
		for _, kv := range c.Env {
			conf.Env = setEnv(conf.Env, kv.Key, kv.Value)
		}
	case *instructions.ArgCommand:
	case *instructions.LabelCommand:
		if conf.Labels == nil {
			conf.Labels = map[string]string{}
		}
		for _, kv := range c.Labels {
			conf.Labels[kv.Key] = kv.Value
		}
	case *instructions.MaintainerCommand:
		// Docker sets the author; the label is how a reader finds it in
		// an OCI config (Docker's docs tell users to write it so).
		cfg.Author = c.Maintainer
		if conf.Labels == nil {
			conf.Labels = map[string]string{}
		}
		conf.Labels["maintainer"] = c.Maintainer
	case *instructions.WorkdirCommand:
		wd := c.Path
		if !path.IsAbs(wd) {
			wd = path.Join("/", conf.WorkingDir, wd)
		}
		conf.WorkingDir = path.Clean(wd)
	case *instructions.UserCommand:
		conf.User = c.User
	case *instructions.ExposeCommand:
		if conf.ExposedPorts == nil {
			conf.ExposedPorts = map[string]struct{}{}
		}
		for _, p := range c.Ports {
			ports, err := exposedPorts(p)
			if err != nil {
				return err
			}
			for _, q := range ports {
				conf.ExposedPorts[q] = struct{}{}
			}
		}
	case *instructions.VolumeCommand:
		if conf.Volumes == nil {
			conf.Volumes = map[string]struct{}{}
		}
		for _, v := range c.Volumes {
			if v == "" {
				return errors.New("VOLUME specified can not be an empty string")
			}
			conf.Volumes[v] = struct{}{}
		}
	case *instructions.CmdCommand:
		conf.Cmd = withShellArgs(conf.Shell, c.CmdLine, c.PrependShell)
		conf.ArgsEscaped = true
	case *instructions.EntrypointCommand:
		conf.Entrypoint = withShellArgs(conf.Shell, c.CmdLine, c.PrependShell)
		conf.Cmd = nil // as Docker: an ENTRYPOINT resets the base's CMD (a later CMD sets it)
	case *instructions.HealthCheckCommand:
		h := c.Health
		conf.Healthcheck = &v1.HealthConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout, StartPeriod: h.StartPeriod, Retries: h.Retries}
	case *instructions.StopSignalCommand:
		conf.StopSignal = c.Signal
	case *instructions.ShellCommand:
		conf.Shell = c.Shell
	case *instructions.OnbuildCommand:
		conf.OnBuild = append(conf.OnBuild, c.Expression)
	default:
		return fmt.Errorf("%s is not supported by cairn's builder", strings.ToUpper(c.Name()))
	}
	return nil
}

func setEnv(env []string, k, v string) []string {
	for i, kv := range env {
		if strings.HasPrefix(kv, k+"=") {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}

func withShellArgs(sh, args []string, prepend bool) []string {
	if !prepend {
		return slices.Clone(args)
	}
	if len(sh) == 0 {
		sh = []string{"/bin/sh", "-c"}
	}
	return append(slices.Clone(sh), strings.Join(args, " "))
}

// exposedPorts reads an EXPOSE word: PORT[/PROTO] or a range.
func exposedPorts(p string) ([]string, error) {
	port, proto, ok := strings.Cut(p, "/")
	if !ok {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	if proto != "tcp" && proto != "udp" && proto != "sctp" {
		return nil, fmt.Errorf("EXPOSE %s: the protocol is tcp, udp or sctp", p)
	}
	lo, hi, isRange := strings.Cut(port, "-")
	a, err := strconv.ParseUint(lo, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("EXPOSE %s: %q is not a port", p, lo)
	}
	z := a
	if isRange {
		if z, err = strconv.ParseUint(hi, 10, 16); err != nil || z < a {
			return nil, fmt.Errorf("EXPOSE %s: %q is not a port range", p, port)
		}
	}
	var out []string
	for n := a; n <= z; n++ {
		out = append(out, fmt.Sprintf("%d/%s", n, proto))
	}
	return out, nil
}

// runArgs is the command a RUN runs, as BuildKit makes it: a shell form
// (heredocs included) through the image's SHELL.
func runArgs(st *stage, c *instructions.RunCommand) []string {
	args := c.CmdLine
	if len(c.Files) > 0 && len(args) == 1 && c.PrependShell {
		if hd := parser.MustParseHeredoc(args[0]); hd != nil {
			data := c.Files[0].Data
			if c.Files[0].Chomp {
				data = parser.ChompHeredocContent(data)
			}
			args = []string{data}
		} else {
			var sb strings.Builder
			sb.WriteString(args[0])
			for _, f := range c.Files {
				sb.WriteByte('\n')
				sb.WriteString(f.Data)
				sb.WriteString(f.Name)
			}
			args = []string{sb.String()}
		}
	}
	return withShellArgs(st.cfg.Config.Shell, args, c.PrependShell)
}
