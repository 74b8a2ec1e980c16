package proctest_test

import (
	"fmt"
	"os/exec"
	"time"

	"github.com/outboxrelay/outbox/internal/proctest"
)

func Example() {
	var out proctest.Buffer
	cmd := exec.Command("echo", "hello")
	cmd.Env = proctest.Env("OUTBOX_")
	cmd.Stdout = &out
	p, err := proctest.Start(cmd)
	if err != nil {
		fmt.Println(err)
		return
	}
	p.Wait(10 * time.Second)
	fmt.Print(out.String(), p.ExitCode())
	// Output:
	// hello
	// 0
}
