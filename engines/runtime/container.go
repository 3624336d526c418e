package runtime

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/cairnhq/cairn/journal"
)

// Container is one container as the daemon keeps it: what it was created
// with and where it is now. Its file, container.json in its directory,
// is the record a restarted daemon re-adopts it from; the journal holds
// its history (container.create, .start, .exit, …).
type Container struct {
	ID      string    `json:"Id"`
	Name    string    `json:"Name"`
	Image   string    `json:"Image"`   // the reference given to run
	ImageID string    `json:"ImageID"` // the image's config digest
	Created time.Time `json:"Created"`
	Config  Config    `json:"Config"`
	Host    Host      `json:"HostConfig"`
	State   State     `json:"State"`
	Net     Net       `json:"NetworkSettings"`
	// Lowerdirs are the unpacked image layers of its rootfs, topmost
	// first; DiffIDs name them (image prune keeps them).
	Lowerdirs []string `json:"Lowerdirs"`
	DiffIDs   []string `json:"DiffIDs"`
	// Offsets are how far each output file has been stored in the logs
	// stream (stdout, stderr).
	Offsets [2]int64 `json:"LogOffsets"`
}

// Config is Docker's Config: what runs.
type Config struct {
	Image      string   `json:"Image"`
	Cmd        []string `json:"Cmd"` // the whole argv: entrypoint then command
	Env        []string `json:"Env"`
	WorkingDir string   `json:"WorkingDir"`
	User       string   `json:"User"`
	Hostname   string   `json:"Hostname"`
}

// Host is Docker's HostConfig: the limits and attachments.
type Host struct {
	Memory        int64         `json:"Memory"`
	NanoCPUs      int64         `json:"NanoCpus"`
	PidsLimit     int64         `json:"PidsLimit"`
	Binds         []string      `json:"Binds"`
	Network       string        `json:"NetworkMode"`
	IP            string        `json:"IPv4Address,omitempty"` // asked for with ip= (Docker: --ip)
	Publish       []string      `json:"PortBindings"`
	RestartPolicy restartPolicy `json:"RestartPolicy"`
	AutoRemove    bool          `json:"AutoRemove"`
}

// State is Docker's State.
type State struct {
	Status       string    `json:"Status"` // created, running, restarting, exited, removing
	Running      bool      `json:"Running"`
	Pid          int       `json:"Pid"`
	ExitCode     int       `json:"ExitCode"`
	Error        string    `json:"Error"`
	StartedAt    time.Time `json:"StartedAt"`
	FinishedAt   time.Time `json:"FinishedAt"`
	OOMKilled    bool      `json:"OOMKilled"`
	RestartCount int       `json:"RestartCount"`
	// ShimPid is the process that waits for runc and writes its exit
	// status; ShimStart its start time (clock ticks after boot, from
	// /proc/PID/stat), which tells it from a later process with its pid.
	ShimPid   int    `json:"ShimPid,omitempty"`
	ShimStart uint64 `json:"ShimStart,omitempty"`
	// Stopped says the last stop was asked for (stop, kill, rm): the
	// restart policy does not bring it back, as with Docker.
	Stopped bool `json:"ManuallyStopped,omitempty"`
}

// Net is Docker's NetworkSettings.
type Net struct {
	IPAddress string            `json:"IPAddress"`
	Gateway   string            `json:"Gateway"`
	Ports     map[string]string `json:"Ports"` // "80/tcp" -> "127.0.0.1:8080"
	Netns     string            `json:"SandboxKey"`
}

// newID returns a container id: 64 hex digits, as Docker's.
func newID() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b[:])
}

var idRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// checkName checks a container name as Docker does.
func checkName(n string) error {
	if !nameRE.MatchString(n) || len(n) > 128 {
		return fmt.Errorf("name=%s: a container name is [a-zA-Z0-9][a-zA-Z0-9_.-]*", n)
	}
	return nil
}

var (
	adjectives = []string{"brave", "calm", "eager", "fond", "gentle", "happy", "keen", "lucid", "merry", "noble", "proud", "quiet", "sharp", "tender", "vivid", "witty"}
	nouns      = []string{"ada", "babbage", "curie", "dijkstra", "euler", "fermat", "gauss", "hopper", "knuth", "lovelace", "noether", "pascal", "ritchie", "shannon", "turing", "wozniak"}
)

// randomName returns a Docker-style name, adjective_scientist.
func randomName() string {
	var b [2]byte
	_, _ = rand.Read(b[:])
	return adjectives[int(b[0])%len(adjectives)] + "_" + nouns[int(b[1])%len(nouns)]
}

// containers is the daemon's table of containers, by id.
type containers struct {
	dir string // <data>/runtime/containers

	mu   sync.Mutex
	byID map[string]*entry

	// alias resolves a reference with a '/' the table does not know
	// (a BOSH instance, GROUP/INDEX) to a container's name; nil for none.
	alias func(ref string) (string, error)
}

// entry is one container with its locks and its live parts.
type entry struct {
	// op serialises what changes the container's life: create (from the
	// moment its name is taken), start, the first step of stop, and
	// remove. It is held across execs of runc and mounts, which mu
	// never is, so ps and inspect do not wait for them.
	op sync.Mutex
	// id and name are the container's, set when the entry is made and
	// never changed: the table reads them under its own lock.
	id, name string
	// mu guards the fields below, for short reads and writes.
	mu sync.Mutex
	c  Container
	// exited is closed when the current run ends (replaced at each start).
	exited chan struct{}
	// logsDone is closed when the current run's output is all stored.
	logsDone chan struct{}
	// lastLogSeq is the seq of the last log record of the current run.
	lastLogSeq int64
	// offsetsSaved is when the record was last saved with the output
	// offsets.
	offsetsSaved time.Time
	removed      bool
	// restarting is true during a restart policy's back-off; closing
	// backoff (stop, rm) ends it without a restart.
	restarting bool
	backoff    chan struct{}
	// created is the container.create event of a container not started
	// yet, appended with its container.start.
	created *journal.Body
}

func (e *entry) snapshot() Container {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.c
}

// cancelBackoff ends a restart policy's back-off, if one is under way,
// so that the container stays exited; e.mu must be held.
func (e *entry) cancelBackoff() {
	if !e.restarting {
		return
	}
	e.restarting = false
	close(e.backoff)
	e.c.State.Status = "exited"
}

// dir returns a container's directory: its bundle, output files and
// record.
func (t *containers) dirOf(id string) string { return filepath.Join(t.dir, id) }

// save writes the container's record (temp file and rename).
func (t *containers) save(c *Container) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(t.dirOf(c.ID), "container.json")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("save container %s: %w", c.ID[:12], err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("save container %s: %w", c.ID[:12], err)
	}
	return nil
}

// readRecord reads the container record in a container's directory (an
// error matching os.ErrNotExist when it has none).
func readRecord(dir string) (Container, error) {
	var c Container
	b, err := os.ReadFile(filepath.Join(dir, "container.json"))
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	return c, err
}

// load reads every container record under dir. unfinished are the ids
// of directories with no record: creates a daemon's end interrupted,
// which the caller cleans.
func (t *containers) load() (list []Container, unfinished []string, err error) {
	ents, err := os.ReadDir(t.dir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil, nil
		}
		return nil, nil, err
	}
	for _, de := range ents {
		if !de.IsDir() || !idRE.MatchString(de.Name()) {
			continue // not a container's: leave it
		}
		c, err := readRecord(filepath.Join(t.dir, de.Name()))
		if os.IsNotExist(err) {
			unfinished = append(unfinished, de.Name())
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("container %s: %w", de.Name(), err)
		}
		list = append(list, c)
	}
	return list, unfinished, nil
}

// find returns the container named by ref: a name, a full id, or an id
// prefix naming one container.
func (t *containers) find(ref string) (*entry, error) {
	e, err := t.findLocal(ref)
	if err != nil && t.alias != nil && strings.Contains(ref, "/") {
		name, aerr := t.alias(ref)
		if aerr != nil {
			return nil, fmt.Errorf("no such container: %s (%v)", ref, aerr)
		}
		return t.findLocal(name)
	}
	return e, err
}

// findLocal finds ref among the table's names, ids and id prefixes.
func (t *containers) findLocal(ref string) (*entry, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.byID[ref]; ok {
		return e, nil
	}
	var hits []*entry
	for id, e := range t.byID {
		if e.name == ref {
			return e, nil
		}
		if len(ref) >= 3 && strings.HasPrefix(id, ref) {
			hits = append(hits, e)
		}
	}
	switch len(hits) {
	case 1:
		return hits[0], nil
	case 0:
		return nil, fmt.Errorf("no such container: %s", ref)
	}
	return nil, fmt.Errorf("%s names %d containers: give more of the id", ref, len(hits))
}

// add puts e in the table unless its name is taken.
func (t *containers) add(e *entry) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, o := range t.byID {
		if o.name == e.name {
			return fmt.Errorf("name=%s: the name is in use by container %s; remove it or choose another", e.name, o.id[:12])
		}
	}
	t.byID[e.id] = e
	return nil
}

func (t *containers) remove(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.byID, id)
}

// all returns every entry.
func (t *containers) all() []*entry {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]*entry, 0, len(t.byID))
	for _, e := range t.byID {
		out = append(out, e)
	}
	return out
}

// shortContainerID is the 12-digit id events carry in container.id, as
// sysdig's and the capture engine's container.id are.
func shortContainerID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
