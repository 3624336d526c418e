package cgstat

import (
	"fmt"
	"strings"
)

// StatsRow is one line of docker stats: the strings it prints, keyed as
// docker's `--format json` keys them, plus the numbers they came from.
type StatsRow struct {
	ID        string `json:"ID"`        // the short (12 hex) id, as the CONTAINER ID column
	Container string `json:"Container"` // the name, as docker prints what the user asked for
	Name      string `json:"Name"`
	CPUPerc   string `json:"CPUPerc"`  // "0.05%"; "--" without a previous reading
	MemUsage  string `json:"MemUsage"` // "1.5MiB / 32MiB", binary units
	MemPerc   string `json:"MemPerc"`  // "4.69%"
	NetIO     string `json:"NetIO"`    // "1.2kB / 648B", decimal units
	BlockIO   string `json:"BlockIO"`  // "0B / 4.1kB", decimal units
	PIDs      string `json:"PIDs"`

	FullID        string  `json:"full_id"`
	CPUPercent    float64 `json:"cpu_percent"`
	MemoryPercent float64 `json:"memory_percent"`
	Stats         Stats   `json:"stats"`
}

// Header is the header line docker stats prints above the rows, column by
// column.
var Header = []string{"CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS"}

// Columns are the row's strings in the order of Header.
func (r StatsRow) Columns() []string {
	return []string{r.ID, r.Name, r.CPUPerc, r.MemUsage, r.MemPerc, r.NetIO, r.BlockIO, r.PIDs}
}

// CPUPercent is docker's CPU %: the cgroup's share of the host's CPU time
// between two readings, times the online CPUs (so one busy CPU of four is
// 100%). It is 0 when either delta is not positive.
func CPUPercent(prev, cur Stats) float64 {
	cpuDelta := float64(cur.CPUUsage) - float64(prev.CPUUsage)
	systemDelta := float64(cur.SystemUsage) - float64(prev.SystemUsage)
	if cpuDelta <= 0 || systemDelta <= 0 {
		return 0
	}
	return cpuDelta / systemDelta * float64(cur.OnlineCPUs) * 100
}

// MemoryPercent is docker's MEM %: usage over limit, 0 without a limit.
func (s Stats) MemoryPercent() float64 {
	if s.MemoryLimit == 0 {
		return 0
	}
	return float64(s.MemoryUsage) / float64(s.MemoryLimit) * 100
}

// Row formats the reading as docker stats prints it for the container
// with the given id and name; prev is the reading before, from which CPU %
// is computed (docker's daemon keeps one a second before; nil prints "--").
func (s Stats) Row(id, name string, prev *Stats) StatsRow {
	short := id
	if len(short) > 12 {
		short = short[:12]
	}
	name = strings.TrimPrefix(name, "/")
	r := StatsRow{
		ID:            short,
		Container:     name,
		Name:          name,
		CPUPerc:       "--",
		MemUsage:      BytesSize(float64(s.MemoryUsage)) + " / " + BytesSize(float64(s.MemoryLimit)),
		MemoryPercent: s.MemoryPercent(),
		NetIO:         humanSize3(s.NetRx) + " / " + humanSize3(s.NetTx),
		BlockIO:       humanSize3(s.BlockRead) + " / " + humanSize3(s.BlockWrite),
		PIDs:          fmt.Sprintf("%d", s.PidsCurrent),
		FullID:        id,
		Stats:         s,
	}
	r.MemPerc = fmt.Sprintf("%.2f%%", r.MemoryPercent)
	if prev != nil {
		r.CPUPercent = CPUPercent(*prev, s)
		r.CPUPerc = fmt.Sprintf("%.2f%%", r.CPUPercent)
	}
	return r
}

// decimalUnits and binaryUnits are go-units' abbreviations.
var (
	decimalUnits = []string{"B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"}
	binaryUnits  = []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"}
)

// HumanSize is go-units' HumanSize: decimal units, four significant
// digits ("1.234kB", "648B").
func HumanSize(size float64) string { return sizeWithPrecision(size, 1000, decimalUnits, 4) }

// BytesSize is go-units' BytesSize: binary units, four significant digits
// ("1.5MiB"), as docker stats prints memory.
func BytesSize(size float64) string { return sizeWithPrecision(size, 1024, binaryUnits, 4) }

// humanSize3 is go-units' HumanSizeWithPrecision(size, 3), what docker
// stats prints for network and block I/O ("1.23kB").
func humanSize3(n uint64) string { return sizeWithPrecision(float64(n), 1000, decimalUnits, 3) }

// sizeWithPrecision divides size by base until it is below base (or the
// units run out) and prints it with %.*g, as go-units does; so 999999
// bytes at precision 3 prints "1e+03kB", as docker does.
func sizeWithPrecision(size, base float64, units []string, precision int) string {
	i := 0
	for size >= base && i < len(units)-1 {
		size /= base
		i++
	}
	return fmt.Sprintf("%.*g%s", precision, size, units[i])
}
