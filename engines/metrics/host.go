package metrics

import (
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs"
	"github.com/prometheus/procfs/blockdevice"
	"golang.org/x/sys/unix"
)

// hostCollector exposes the host under node_exporter's metric names: CPU
// seconds by mode, memory, load, filesystems, network and disk I/O. It
// reads /proc with github.com/prometheus/procfs, the reader node_exporter
// itself is built on; a source that fails leaves the others' numbers.
type hostCollector struct {
	proc                                  procfs.FS
	blk                                   blockdevice.FS
	cpu, load1, load5, load15, boot, ctxt *prometheus.Desc
	mem                                   map[string]*prometheus.Desc
	fsSize, fsFree, fsAvail, fsFiles      *prometheus.Desc
	netRx, netTx, netRxP, netTxP          *prometheus.Desc
	diskR, diskW, diskRB, diskWB          *prometheus.Desc
	scrapeErr                             *prometheus.Desc
}

func nodeDesc(sub, name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName("node", sub, name), help, labels, nil)
}

func newHostCollector() (*hostCollector, error) {
	p, err := procfs.NewDefaultFS()
	if err != nil {
		return nil, err
	}
	b, err := blockdevice.NewDefaultFS()
	if err != nil {
		return nil, err
	}
	c := &hostCollector{
		proc:      p,
		blk:       b,
		cpu:       nodeDesc("cpu", "seconds_total", "Seconds the CPUs spent in each mode.", "cpu", "mode"),
		load1:     nodeDesc("", "load1", "1m load average."),
		load5:     nodeDesc("", "load5", "5m load average."),
		load15:    nodeDesc("", "load15", "15m load average."),
		boot:      nodeDesc("", "boot_time_seconds", "Node boot time, in unixtime."),
		ctxt:      nodeDesc("", "context_switches_total", "Total number of context switches."),
		mem:       map[string]*prometheus.Desc{},
		fsSize:    nodeDesc("filesystem", "size_bytes", "Filesystem size in bytes.", "device", "fstype", "mountpoint"),
		fsFree:    nodeDesc("filesystem", "free_bytes", "Filesystem free space in bytes.", "device", "fstype", "mountpoint"),
		fsAvail:   nodeDesc("filesystem", "avail_bytes", "Filesystem space available to non-root users in bytes.", "device", "fstype", "mountpoint"),
		fsFiles:   nodeDesc("filesystem", "files", "Filesystem total file nodes.", "device", "fstype", "mountpoint"),
		netRx:     nodeDesc("network", "receive_bytes_total", "Network device statistic receive_bytes.", "device"),
		netTx:     nodeDesc("network", "transmit_bytes_total", "Network device statistic transmit_bytes.", "device"),
		netRxP:    nodeDesc("network", "receive_packets_total", "Network device statistic receive_packets.", "device"),
		netTxP:    nodeDesc("network", "transmit_packets_total", "Network device statistic transmit_packets.", "device"),
		diskR:     nodeDesc("disk", "reads_completed_total", "The total number of reads completed successfully.", "device"),
		diskW:     nodeDesc("disk", "writes_completed_total", "The total number of writes completed successfully.", "device"),
		diskRB:    nodeDesc("disk", "read_bytes_total", "The total number of bytes read successfully.", "device"),
		diskWB:    nodeDesc("disk", "written_bytes_total", "The total number of bytes written successfully.", "device"),
		scrapeErr: prometheus.NewDesc("node_scrape_collector_success", "Whether a collector succeeded.", []string{"collector"}, nil),
	}
	for _, f := range memFields {
		c.mem[f] = nodeDesc("memory", f+"_bytes", "Memory information field "+f+"_bytes.")
	}
	return c, nil
}

// memFields are the /proc/meminfo fields exposed, under their names.
var memFields = []string{"MemTotal", "MemFree", "MemAvailable", "Buffers", "Cached", "SwapTotal", "SwapFree"}

func (c *hostCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.cpu, c.load1, c.load5, c.load15, c.boot, c.ctxt, c.fsSize, c.fsFree, c.fsAvail, c.fsFiles, c.netRx, c.netTx, c.netRxP, c.netTxP, c.diskR, c.diskW, c.diskRB, c.diskWB, c.scrapeErr} {
		ch <- d
	}
	for _, d := range c.mem {
		ch <- d
	}
}

func (c *hostCollector) Collect(ch chan<- prometheus.Metric) {
	for _, part := range []struct {
		name string
		fn   func(chan<- prometheus.Metric) error
	}{{"cpu", c.collectCPU}, {"loadavg", c.collectLoad}, {"meminfo", c.collectMem}, {"filesystem", c.collectFS}, {"netdev", c.collectNet}, {"diskstats", c.collectDisk}} {
		ok := 1.0
		if err := part.fn(ch); err != nil {
			ok = 0
		}
		ch <- prometheus.MustNewConstMetric(c.scrapeErr, prometheus.GaugeValue, ok, part.name)
	}
}

func (c *hostCollector) collectCPU(ch chan<- prometheus.Metric) error {
	st, err := c.proc.Stat()
	if err != nil {
		return err
	}
	for n, s := range st.CPU {
		cpu := strconv.FormatInt(n, 10)
		for mode, v := range map[string]float64{"user": s.User, "nice": s.Nice, "system": s.System, "idle": s.Idle, "iowait": s.Iowait, "irq": s.IRQ, "softirq": s.SoftIRQ, "steal": s.Steal} {
			ch <- prometheus.MustNewConstMetric(c.cpu, prometheus.CounterValue, v, cpu, mode)
		}
	}
	ch <- prometheus.MustNewConstMetric(c.boot, prometheus.GaugeValue, float64(st.BootTime))
	ch <- prometheus.MustNewConstMetric(c.ctxt, prometheus.CounterValue, float64(st.ContextSwitches))
	return nil
}

func (c *hostCollector) collectLoad(ch chan<- prometheus.Metric) error {
	l, err := c.proc.LoadAvg()
	if err != nil {
		return err
	}
	ch <- prometheus.MustNewConstMetric(c.load1, prometheus.GaugeValue, l.Load1)
	ch <- prometheus.MustNewConstMetric(c.load5, prometheus.GaugeValue, l.Load5)
	ch <- prometheus.MustNewConstMetric(c.load15, prometheus.GaugeValue, l.Load15)
	return nil
}

func (c *hostCollector) collectMem(ch chan<- prometheus.Metric) error {
	mi, err := c.proc.Meminfo()
	if err != nil {
		return err
	}
	for f, v := range map[string]*uint64{"MemTotal": mi.MemTotalBytes, "MemFree": mi.MemFreeBytes, "MemAvailable": mi.MemAvailableBytes, "Buffers": mi.BuffersBytes, "Cached": mi.CachedBytes, "SwapTotal": mi.SwapTotalBytes, "SwapFree": mi.SwapFreeBytes} {
		if v != nil {
			ch <- prometheus.MustNewConstMetric(c.mem[f], prometheus.GaugeValue, float64(*v))
		}
	}
	return nil
}

// pseudoFS are the filesystems node_exporter leaves out by default.
var pseudoFS = map[string]bool{"autofs": true, "binfmt_misc": true, "bpf": true, "cgroup": true, "cgroup2": true, "configfs": true, "debugfs": true, "devpts": true, "devtmpfs": true, "fusectl": true, "hugetlbfs": true, "iso9660": true, "mqueue": true, "nsfs": true, "overlay": true, "proc": true, "procfs": true, "pstore": true, "rpc_pipefs": true, "securityfs": true, "selinuxfs": true, "squashfs": true, "sysfs": true, "tracefs": true}

func (c *hostCollector) collectFS(ch chan<- prometheus.Metric) error {
	mounts, err := procfs.GetMounts()
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, m := range mounts {
		if pseudoFS[m.FSType] || seen[m.MountPoint] || strings.HasPrefix(m.MountPoint, "/proc/") || strings.HasPrefix(m.MountPoint, "/sys/") || strings.HasPrefix(m.MountPoint, "/run/netns/") {
			continue
		}
		seen[m.MountPoint] = true
		var st unix.Statfs_t
		if unix.Statfs(m.MountPoint, &st) != nil {
			continue
		}
		bs := float64(st.Bsize)
		lv := []string{m.Source, m.FSType, m.MountPoint}
		ch <- prometheus.MustNewConstMetric(c.fsSize, prometheus.GaugeValue, float64(st.Blocks)*bs, lv...)
		ch <- prometheus.MustNewConstMetric(c.fsFree, prometheus.GaugeValue, float64(st.Bfree)*bs, lv...)
		ch <- prometheus.MustNewConstMetric(c.fsAvail, prometheus.GaugeValue, float64(st.Bavail)*bs, lv...)
		ch <- prometheus.MustNewConstMetric(c.fsFiles, prometheus.GaugeValue, float64(st.Files), lv...)
	}
	return nil
}

func (c *hostCollector) collectNet(ch chan<- prometheus.Metric) error {
	nd, err := c.proc.NetDev()
	if err != nil {
		return err
	}
	for name, l := range nd {
		ch <- prometheus.MustNewConstMetric(c.netRx, prometheus.CounterValue, float64(l.RxBytes), name)
		ch <- prometheus.MustNewConstMetric(c.netTx, prometheus.CounterValue, float64(l.TxBytes), name)
		ch <- prometheus.MustNewConstMetric(c.netRxP, prometheus.CounterValue, float64(l.RxPackets), name)
		ch <- prometheus.MustNewConstMetric(c.netTxP, prometheus.CounterValue, float64(l.TxPackets), name)
	}
	return nil
}

// sectorSize is the unit of /proc/diskstats' sector counts, whatever the
// device's own sector size (as node_exporter counts).
const sectorSize = 512

func (c *hostCollector) collectDisk(ch chan<- prometheus.Metric) error {
	ds, err := c.blk.ProcDiskstats()
	if err != nil {
		return err
	}
	for _, d := range ds {
		if strings.HasPrefix(d.DeviceName, "loop") || strings.HasPrefix(d.DeviceName, "ram") {
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.diskR, prometheus.CounterValue, float64(d.ReadIOs), d.DeviceName)
		ch <- prometheus.MustNewConstMetric(c.diskW, prometheus.CounterValue, float64(d.WriteIOs), d.DeviceName)
		ch <- prometheus.MustNewConstMetric(c.diskRB, prometheus.CounterValue, float64(d.ReadSectors)*sectorSize, d.DeviceName)
		ch <- prometheus.MustNewConstMetric(c.diskWB, prometheus.CounterValue, float64(d.WriteSectors)*sectorSize, d.DeviceName)
	}
	return nil
}
