package runtime

// ContainersService names the service through which other engines name a
// container from what a user typed: the logs engine's `logs CONTAINER`
// reads the logs stream for the container's id.
const ContainersService = "runtime.containers"

// Provides is the containers service.
func (m *module) Provides() []string { return []string{ContainersService} }

// ContainerRef returns the short id (as the logs stream's records carry
// it) and the name of the container ref names: a name, an id or an id
// prefix.
func (m *module) ContainerRef(ref string) (id, name string, err error) {
	e, err := m.table.find(ref)
	if err != nil {
		return "", "", err
	}
	c := e.snapshot()
	return shortContainerID(c.ID), c.Name, nil
}
