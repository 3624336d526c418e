package journal

// Clone returns a copy of r whose Record does not alias any other memory.
func (r *Raw) Clone() *Raw {
	return &Raw{Stream: r.Stream, Seq: r.Seq, Record: append([]byte(nil), r.Record...)}
}
