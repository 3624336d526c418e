package filter

// logsFields are the names a log record is filtered by, as Fluentd's users
// write them: `tag` and `record` (the record's own map). A record of the
// logs engine carries both in data; a container's output line (the
// runtime's container.log) has its tag in data and its record is what
// Docker's fluentd driver sends for it: {log, source}.
var logsFields = []*field{
	derived("tag", kString, dataString("tag")),
	derived("record", kData, func(r fieldReader) any {
		if v, ok := r.dataKey("record"); ok {
			if m, isMap := v.(map[string]any); isMap {
				return m
			}
			return errMissing
		}
		line, ok := r.dataKey("line")
		if !ok {
			return errMissing
		}
		src, _ := r.dataKey("stream")
		if src == nil {
			src = ""
		}
		return map[string]any{"log": line, "source": src}
	}),
}
