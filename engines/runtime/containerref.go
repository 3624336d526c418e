package runtime

// ContainerRef returns the short id (as the logs stream's records carry
// it) and the name of the container ref names: a name, an id or an id
// prefix. The logs engine's `logs CONTAINER` reads the logs stream for
// that id.
func (s *Service) ContainerRef(ref string) (id, name string, err error) {
	e, err := s.m.table.find(ref)
	if err != nil {
		return "", "", err
	}
	c := e.snapshot()
	return shortContainerID(c.ID), c.Name, nil
}

// ContainerRunning reports whether the container ref names runs (a
// restart policy's back-off counts as not running).
func (s *Service) ContainerRunning(ref string) (bool, error) {
	e, err := s.m.table.find(ref)
	if err != nil {
		return false, err
	}
	return e.snapshot().State.Running, nil
}
