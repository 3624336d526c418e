package build

import "testing"

// FuzzDockerfile: any bytes as a Dockerfile parse or fail with a syntax
// error, never a panic (BuildKit's parser, and cairn's reading of its
// instructions: stages, ARGs, heredocs, ONBUILD).
func FuzzDockerfile(f *testing.F) {
	for _, s := range []string{
		"FROM scratch\nCOPY . /\nCMD [\"/bin/sh\"]\n",
		"ARG BASE=busybox\nFROM ${BASE} AS b\nRUN <<EOF\necho hi\nEOF\nFROM b\nCOPY --from=b /x /y\nONBUILD RUN true\n",
		"# escape=`\nFROM scratch\nRUN echo `\n  hi\n", "FROM", "RUN [\"unterminated", "HEALTHCHECK --interval=x CMD true",
		"FROM scratch\nEXPOSE 80/tcp 53/udp\nENV A=1 B=\"2 3\"\nLABEL a=b\nUSER 1000:1000\nWORKDIR /w\nSTOPSIGNAL SIGTERM\nSHELL [\"/bin/sh\",\"-c\"]\nVOLUME /data\nMAINTAINER me\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		_, _ = ParseDockerfile("Dockerfile", []byte(src))
	})
}
