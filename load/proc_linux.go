//go:build linux

package load

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"syscall"
	"time"
)

// childProcAttr puts the gateway in a process group of its own, so that
// Ctrl-C on a terminal reaches only bench, which then stops the gateway
// with SIGTERM; and asks the kernel to send SIGTERM if bench dies first.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}

// readProcMemory reads VmRSS, RssAnon, RssFile and VmHWM from
// /proc/<pid>/status.
func readProcMemory(pid int) (procMemory, error) {
	var m procMemory
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return m, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Bytes()
		var dst *int64
		switch {
		case bytes.HasPrefix(line, []byte("VmRSS:")):
			dst = &m.rss
		case bytes.HasPrefix(line, []byte("RssAnon:")):
			dst = &m.anon
		case bytes.HasPrefix(line, []byte("RssFile:")):
			dst = &m.file
		case bytes.HasPrefix(line, []byte("VmHWM:")):
			dst = &m.hwm
		default:
			continue
		}
		// "VmRSS:	  123456 kB"
		f := bytes.Fields(line)
		if len(f) < 2 {
			continue
		}
		n, err := strconv.ParseInt(string(f[1]), 10, 64)
		if err != nil {
			continue
		}
		if len(f) >= 3 && string(f[2]) == "kB" {
			n <<= 10
		}
		*dst = n
	}
	if m.rss == 0 {
		return m, errNoProc // a zombie or a kernel thread: nothing to report
	}
	return m, nil
}

// clockTicks is the unit of /proc's CPU times on Linux (USER_HZ).
const clockTicks = 100

// readProcCPU returns the CPU time, user and system, that process pid
// has used (all its threads), from /proc/<pid>/stat, in steps of 10 ms.
func readProcCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces: count the
	// fields after it (state is field 3; utime and stime are 14 and 15).
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errNoProc
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 13 {
		return 0, errNoProc
	}
	user, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	sys, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errNoProc
	}
	return time.Duration(user+sys) * time.Second / clockTicks, nil
}

// loadAverage returns the 1-minute load average.
func loadAverage() (float64, bool) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, false
	}
	f := bytes.Fields(b)
	if len(f) == 0 {
		return 0, false
	}
	v, err := strconv.ParseFloat(string(f[0]), 64)
	return v, err == nil
}

// cpuModel is the processor's model name as /proc/cpuinfo gives it (its
// first "model name" line), "" where it gives none.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	return parseCPUModel(b)
}
