package deploy

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"

	"go.yaml.in/yaml/v3"

	"github.com/cairnhq/cairn/journal"
)

// CloudConfig is BOSH's cloud config, as far as one host has a use for
// it: AZs (names), VM types (ram in MB and cpu → the container's
// limits), disk types, networks (names checked; subnets read and
// checked, but every instance is on the runtime's bridge) and the
// compilation block.
type CloudConfig struct {
	AZs          []struct{ Name string } `yaml:"azs"`
	VMTypes      []VMType                `yaml:"vm_types"`
	DiskTypes    []DiskType              `yaml:"disk_types"`
	Networks     []Network               `yaml:"networks"`
	VMExtensions []map[string]any        `yaml:"vm_extensions"`
	Compilation  struct {
		Workers  int    `yaml:"workers"`
		Network  string `yaml:"network"`
		VMType   string `yaml:"vm_type"`
		AZ       string `yaml:"az"`
		Reuse    bool   `yaml:"reuse_compilation_vms"`
		CloudCfg any    `yaml:"cloud_properties"`
	} `yaml:"compilation"`
}

// VMType is a vm_types entry; its cloud_properties' ram (MB) and cpu
// become the container's memory and CPU limits.
type VMType struct {
	Name            string `yaml:"name"`
	CloudProperties struct {
		RAM  int64   `yaml:"ram"`
		CPU  float64 `yaml:"cpu"`
		Disk int64   `yaml:"disk"`
	} `yaml:"cloud_properties"`
}

// DiskType is a disk_types entry.
type DiskType struct {
	Name     string         `yaml:"name"`
	DiskSize int            `yaml:"disk_size"`
	Cloud    map[string]any `yaml:"cloud_properties"`
}

// Network is a networks entry.
type Network struct {
	Name    string `yaml:"name"`
	Type    string `yaml:"type"`
	Subnets []struct {
		Range    string         `yaml:"range"`
		Gateway  string         `yaml:"gateway"`
		DNS      []string       `yaml:"dns"`
		Reserved []string       `yaml:"reserved"`
		Static   []string       `yaml:"static"`
		AZ       string         `yaml:"az"`
		AZs      []string       `yaml:"azs"`
		Cloud    map[string]any `yaml:"cloud_properties"`
	} `yaml:"subnets"`
	Cloud map[string]any `yaml:"cloud_properties"`
}

// parseCloudConfig reads a cloud config; errors name file:line.
func parseCloudConfig(file string, src []byte) (*CloudConfig, error) {
	dec := yaml.NewDecoder(bytes.NewReader(src))
	dec.KnownFields(true)
	var c CloudConfig
	if err := dec.Decode(&c); err != nil {
		return nil, yamlError(file, src, err)
	}
	seen := map[string]bool{}
	for _, n := range c.Networks {
		if n.Name == "" || seen["net/"+n.Name] {
			return nil, fmt.Errorf("%s: networks: %q is empty or given twice", file, n.Name)
		}
		seen["net/"+n.Name] = true
		switch n.Type {
		case "", "manual", "dynamic", "vip":
		default:
			return nil, fmt.Errorf("%s: networks %s: type %q is manual, dynamic or vip", file, n.Name, n.Type)
		}
		for _, s := range n.Subnets {
			if s.Range == "" {
				continue
			}
			pfx, err := netip.ParsePrefix(s.Range)
			if err != nil {
				return nil, fmt.Errorf("%s: networks %s: range %q: %v", file, n.Name, s.Range, err)
			}
			if s.Gateway != "" {
				gw, err := netip.ParseAddr(s.Gateway)
				if err != nil || !pfx.Contains(gw) {
					return nil, fmt.Errorf("%s: networks %s: gateway %q is not an address of %s", file, n.Name, s.Gateway, s.Range)
				}
			}
		}
	}
	for _, v := range c.VMTypes {
		if v.Name == "" || seen["vm/"+v.Name] {
			return nil, fmt.Errorf("%s: vm_types: %q is empty or given twice", file, v.Name)
		}
		seen["vm/"+v.Name] = true
		if v.CloudProperties.RAM < 0 || v.CloudProperties.CPU < 0 {
			return nil, fmt.Errorf("%s: vm_types %s: ram and cpu are not negative", file, v.Name)
		}
	}
	return &c, nil
}

// check refuses a manifest that names what the cloud config does not
// have: a vm_type, a network, an AZ, a persistent_disk_type.
func (c *CloudConfig) check(man *Manifest) error {
	has := func(kind, name string) bool {
		switch kind {
		case "vm_type":
			for _, v := range c.VMTypes {
				if v.Name == name {
					return true
				}
			}
		case "network":
			for _, n := range c.Networks {
				if n.Name == name {
					return true
				}
			}
		case "az":
			for _, a := range c.AZs {
				if a.Name == name {
					return true
				}
			}
		case "disk_type":
			for _, d := range c.DiskTypes {
				if d.Name == name {
					return true
				}
			}
		}
		return false
	}
	for _, g := range man.InstanceGroups {
		if g.VMType != "" && !has("vm_type", g.VMType) {
			return fmt.Errorf("instance_groups %s: vm_type %q is not in the cloud config (cloud-config update FILE)", g.Name, g.VMType)
		}
		for _, n := range g.Networks {
			if !has("network", n.Name) {
				return fmt.Errorf("instance_groups %s: network %q is not in the cloud config", g.Name, n.Name)
			}
		}
		for _, az := range g.AZs {
			if !has("az", az) {
				return fmt.Errorf("instance_groups %s: az %q is not in the cloud config", g.Name, az)
			}
		}
		if g.PersistentDiskType != "" && !has("disk_type", g.PersistentDiskType) {
			return fmt.Errorf("instance_groups %s: persistent_disk_type %q is not in the cloud config", g.Name, g.PersistentDiskType)
		}
	}
	return nil
}

// limits are the container limits of a vm_type: memory in bytes, CPU
// in billionths.
func (c *CloudConfig) limits(vmType string) (memory, nanoCPUs int64) {
	if c == nil {
		return 0, 0
	}
	for _, v := range c.VMTypes {
		if v.Name == vmType {
			return v.CloudProperties.RAM << 20, int64(v.CloudProperties.CPU * 1e9)
		}
	}
	return 0, 0
}

// updateCloudConfig replaces the cloud config; the next deploys are
// checked against it.
func (m *module) updateCloudConfig(ctx context.Context, actor journal.Actor, file string, src []byte) (*CloudConfig, []string, error) {
	c, err := parseCloudConfig(file, src)
	if err != nil {
		return nil, nil, err
	}
	m.mu.Lock()
	diff := lineDiff(m.st.CloudConfig, string(src))
	m.st.CloudConfig = string(src)
	m.saveLocked()
	m.mu.Unlock()
	var nets, vms []string
	for _, n := range c.Networks {
		nets = append(nets, n.Name)
	}
	for _, v := range c.VMTypes {
		vms = append(vms, v.Name)
	}
	m.record(ctx, actor, "cloud_config.update", "cloud-config", map[string]any{"networks": nets, "vm_types": vms,
		"azs": len(c.AZs), "disk_types": len(c.DiskTypes), "changed_lines": len(diff)})
	return c, diff, nil
}
