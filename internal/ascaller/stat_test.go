package ascaller

import "syscall"

type unixStat struct{ uid uint32 }

func stat(p string, st *unixStat) error {
	var s syscall.Stat_t
	if err := syscall.Stat(p, &s); err != nil {
		return err
	}
	st.uid = s.Uid
	return nil
}
