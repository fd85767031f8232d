#ifndef INETKIT_CFUZZERDRIVER_H
#define INETKIT_CFUZZERDRIVER_H
#include <stddef.h>
#include <stdint.h>

/// libFuzzer's entry point for programs that have their own main (libFuzzer.a provides it
/// when linked with -sanitize=fuzzer). SwiftPM renames an executable's main on Linux, so the
/// usual recipe of letting libFuzzer own main does not link; main.swift calls this instead.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
