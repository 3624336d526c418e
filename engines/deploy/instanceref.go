package deploy

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// InstancesService is the name the module provides instance names under:
// the runtime's exec, logs, top and stats take GROUP/INDEX or GROUP/UUID
// (and DEPLOYMENT/GROUP/…), as bosh ssh and bosh logs do.
const InstancesService = "deploy.instances"

// Provides names the module's service.
func (m *module) Provides() []string { return []string{InstancesService} }

// instanceNames resolves instance references for the runtime.
type instanceNames struct{ m *module }

// InstanceContainer returns the container name of the instance ref names:
// GROUP/INDEX or GROUP/UUID (an id prefix of at least 4 characters will
// do) in the one deployment that has that group, or
// DEPLOYMENT/GROUP/INDEX|UUID.
func (n instanceNames) InstanceContainer(ref string) (string, error) {
	parts := strings.Split(ref, "/")
	var dep, group, which string
	switch len(parts) {
	case 2:
		group, which = parts[0], parts[1]
	case 3:
		dep, group, which = parts[0], parts[1], parts[2]
	default:
		return "", fmt.Errorf("%s: an instance is GROUP/INDEX, GROUP/UUID or DEPLOYMENT/GROUP/INDEX", ref)
	}
	m := n.m
	m.mu.Lock()
	defer m.mu.Unlock()
	type hit struct{ dep, container string }
	// An index is meant when one matches; else an id prefix, which may
	// be all digits too (a UUID's first eight are in one of ~40).
	var hits, idHits []hit
	deps := make([]string, 0, len(m.st.Deployments))
	for name := range m.st.Deployments {
		deps = append(deps, name)
	}
	slices.Sort(deps)
	for _, name := range deps {
		if dep != "" && name != dep {
			continue
		}
		for _, in := range m.st.Deployments[name].Instances {
			if in.Group != group || in.Container == "" {
				continue
			}
			idx, err := strconv.Atoi(which)
			switch {
			case err == nil && in.Index == idx:
				hits = append(hits, hit{name, in.Container})
			case len(which) >= 4 && strings.HasPrefix(in.ID, which):
				idHits = append(idHits, hit{name, in.Container})
			}
		}
	}
	if len(hits) == 0 {
		hits = idHits
	}
	switch len(hits) {
	case 0:
		return "", fmt.Errorf("no instance %s in any deployment (deploy instances lists them)", ref)
	case 1:
		return hits[0].container, nil
	}
	var names []string
	for _, h := range hits {
		names = append(names, h.dep+"/"+group+"/"+which)
	}
	return "", fmt.Errorf("%s names instances of %d deployments: give one of %s", ref, len(hits), strings.Join(names, ", "))
}
