package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/cairnhq/cairn/client/wire"
	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/journal"
	"github.com/cairnhq/cairn/scripts"
)

// chiselVerbs are the verbs of the chisel runtime (scripts/).
func chiselVerbs() []serverVerb {
	opts := append(eventOptions(true), dsl.Option{Name: "source", Help: "the chisel's Lua source, sent by `cairn chisel ./file.lua`"})
	return []serverVerb{
		{Spec: dsl.Spec{
			Verb:    "chisel",
			Access:  dsl.AccessRead,
			Summary: "run a Lua chisel over events, from history or live",
			Help: "chisel NAME [ARGS…] runs a chisel over the selected events (stream= defaults to the\n" +
				"chisel's declared stream, else audit) and streams what it prints. With live it follows\n" +
				"new events and on_interval fires on the wall clock. `events … | chisel NAME ARGS…` and\n" +
				"`tail … | chisel NAME ARGS…` feed it a selection too.\n\n" +
				"  chisel topkinds since=1h\n  chisel counts_by actor.user kind=kv.*\n  chisel echo live where 'actor.uid != 0'",
			Args:       []dsl.Arg{{Name: "NAME", Required: true, Help: "a chisel from `chisel list`, or ./file.lua"}, {Name: "ARGS", Variadic: true, Help: "the chisel's arguments, in the order of its args"}},
			Options:    opts,
			Flags:      []dsl.Flag{{Name: "live", Help: "follow new events instead of reading history"}, {Name: "reverse", Help: "newest first (history only)"}},
			Where:      true,
			Stream:     true,
			ClientFile: "NAME",
		}, run: (*Server).runChisel},
		{Spec: dsl.Spec{
			Verb:    "chisel info",
			Access:  dsl.AccessRead,
			Summary: "describe a chisel: its category, description and arguments",
			Args:    []dsl.Arg{{Name: "NAME", Required: true}},
		}, run: (*Server).runChiselInfo},
		{Spec: dsl.Spec{
			Verb:    "chisel list",
			Access:  dsl.AccessRead,
			Summary: "list the chisels: built-in, /etc/cairn/chisels, --chisel-path",
		}, run: (*Server).runChiselList},
	}
}

// chiselRow is one chisel as chisel list shows it.
type chiselRow struct {
	Name     string `json:"name"`
	Category string `json:"category"`
	Summary  string `json:"summary"`
	Args     string `json:"args"`
	Stream   string `json:"stream,omitempty"`
	Source   string `json:"source"`
	Error    string `json:"error,omitempty"`
}

func (s *Server) runChiselList(ctx context.Context, r engines.Request) error {
	infos, err := s.chisels.List()
	for _, in := range infos {
		args := make([]string, len(in.Args))
		for i, a := range in.Args {
			args[i] = a.Name
			if a.Optional {
				args[i] = "[" + a.Name + "]"
			}
		}
		if err := r.Row(chiselRow{Name: in.Name, Category: in.Category, Summary: in.ShortDescription, Args: strings.Join(args, " "), Stream: in.Stream, Source: in.Source, Error: in.Error}); err != nil {
			return err
		}
	}
	return err
}

func (s *Server) runChiselInfo(ctx context.Context, r engines.Request) error {
	w := r.Statement().Args["NAME"]
	in, err := s.chisels.Info(w.Text)
	if err != nil {
		return engines.Errorf(wire.NotFound, w, "%v", err)
	}
	text := "usage: chisel " + in.Name + " " + in.Usage() + "\n\n" + in.Description
	if in.Category != "" {
		text += "\n\ncategory: " + in.Category
	}
	if in.Stream != "" {
		text += "\nstream: " + in.Stream
	}
	for _, a := range in.Args {
		opt := ""
		if a.Optional {
			opt = " (optional)"
		}
		text += fmt.Sprintf("\n  %s  %s%s", a.Name, a.Description, opt)
	}
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		if err := r.Line(line); err != nil {
			return err
		}
	}
	return nil
}

// runChisel runs `chisel NAME ARGS…` over its own selection of events.
func (s *Server) runChisel(ctx context.Context, r engines.Request) error {
	st := r.Statement()
	name := st.Args["NAME"]
	args := make([]string, len(st.Rest))
	for i, w := range st.Rest {
		args[i] = w.Text
	}
	var ch *scripts.Chisel
	var err error
	if src, ok := st.Opt("source"); ok {
		ch, err = s.chisels.LoadSource(name.Text, src.Text)
	} else {
		ch, err = s.chisels.Load(name.Text)
	}
	if err != nil {
		return chiselError(name, err)
	}
	return s.runChiselOn(ctx, r, ch, name, args, st.Flags["live"])
}

// runChiselPipe runs the `| chisel NAME ARGS…` stage of an events (history)
// or tail (live) statement.
func (s *Server) runChiselPipe(ctx context.Context, r engines.Request) error {
	st := r.Statement()
	name := st.Pipe.Chisel
	ch, err := s.chisels.Load(name.Text)
	if err != nil {
		return chiselError(name, err)
	}
	args := make([]string, len(st.Pipe.Args))
	for i, w := range st.Pipe.Args {
		args[i] = w.Text
	}
	return s.runChiselOn(ctx, r, ch, name, args, st.Spec.Verb == "tail")
}

func (s *Server) runChiselOn(ctx context.Context, r engines.Request, ch *scripts.Chisel, name dsl.Word, args []string, live bool) error {
	sel, err := s.selection(r)
	if err != nil {
		return err
	}
	if _, given := r.Statement().Opt("stream"); !given {
		switch declared := ch.Info().Stream; {
		case declared != "":
			if s.journal.Stream(declared) == nil {
				return engines.Errorf(wire.InvalidArgument, name, "chisel %s declares unknown stream %q", ch.Info().Name, declared)
			}
			sel.streams = []string{declared}
		case r.Statement().Pipe == nil:
			// A chisel that declares no stream is sysdig's: it reads the
			// captured system events. A pipe keeps its statement's selection.
			sel.streams = []string{journal.Capture}
		}
	}
	var feed scripts.Feed
	if live {
		if len(sel.streams) != 1 {
			return wire.Errorf(wire.InvalidArgument, "a live chisel follows one stream; use stream=audit or stream=capture")
		}
		f, err := s.liveFeed(ctx, sel)
		if err != nil {
			return err
		}
		defer f.sub.Close()
		feed = f
	} else {
		f := s.historyFeed(sel)
		defer f.close()
		feed = f
	}
	err = ch.Run(ctx, feed, scripts.RunOptions{Args: args, Live: live, Output: r.Line})
	if err != nil && ctx.Err() == nil {
		return chiselError(name, err)
	}
	return err
}

// chiselError reports a chisel's failure at its name, with the Lua error
// (file:line) or the bound it outran.
func chiselError(name dsl.Word, err error) error {
	code := wire.FailedPrecondition
	var se *scripts.ScriptError
	switch {
	case errors.As(err, &se):
		code = wire.InvalidArgument
	case errors.Is(err, scripts.ErrBudget), errors.Is(err, scripts.ErrMemory):
		code = wire.ResourceExhausted
	case strings.Contains(err.Error(), "no chisel"), strings.Contains(err.Error(), "unknown chisel"):
		code = wire.NotFound
	}
	return engines.Errorf(code, name, "%v", err)
}

// liveFeed feeds a chisel the new events of one stream.
type liveFeed struct {
	where *liveWhere
	sub   *journal.Subscription
	limit int64
	n     int64
}

func (s *Server) liveFeed(ctx context.Context, sel *eventSelection) (*liveFeed, error) {
	st := s.journal.Stream(sel.streams[0])
	q := sel.query
	where := &liveWhere{f: sel.where, ctx: ctx}
	match := func(raw *journal.Raw) bool {
		if (q.Kind != "" || q.Subject != "") && !journal.MatchQuery(q, raw) {
			return false
		}
		return where.match(raw)
	}
	return &liveFeed{sub: st.Subscribe(ctx, startSeq(st, q), match), limit: sel.limit, where: where}, nil
}

func (f *liveFeed) Next(ctx context.Context) (*journal.Raw, error) {
	for {
		if f.limit > 0 && f.n >= f.limit {
			return nil, io.EOF
		}
		it, err := f.sub.Next(ctx)
		if err != nil {
			if errors.Is(err, journal.ErrClosed) {
				return nil, io.EOF
			}
			return nil, err
		}
		if it.Lagged {
			continue // the subscription reads the journal now; nothing is lost
		}
		if err := f.where.Err(); err != nil {
			return nil, err
		}
		f.n++
		return it.Raw, nil
	}
}
