// SPDX-License-Identifier: MIT
// A Go program recording one event through libtel with cgo.
//
//	go build -o example-go .     (pkg-config must find tel.pc)
//
// cgo cannot build a C union or call a variadic macro, so the event's
// shape is written once in C below and Go passes the values.
package main

/*
#cgo pkg-config: tel
#include <stdlib.h>
#include <tel.h>

static int emit_ran(const char *app, const char *lang, long long answer)
{
	tel_prop props[] = { TEL_STR("lang", lang), TEL_INT("answer", answer) };
	return tel_emit(app, "example.ran", props, sizeof props / sizeof *props);
}
*/
import "C"

import (
	"fmt"
	"os"
	"unsafe"
)

func main() {
	app := C.CString("example-go")
	defer C.free(unsafe.Pointer(app))
	lang := C.CString("go")
	defer C.free(unsafe.Pointer(lang))

	// Telemetry never fails the program: a failure is worth a line in
	// debug output at most, never a non-zero exit.
	if rc := C.emit_ran(app, lang, 42); rc < 0 && os.Getenv("EXAMPLE_DEBUG") != "" {
		fmt.Fprintln(os.Stderr, "telemetry:", C.GoString(C.tel_strerror(rc)))
	}
}
