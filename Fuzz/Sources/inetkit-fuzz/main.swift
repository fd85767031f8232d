#if canImport(Glibc)
import Glibc
#endif
import CFuzzerDriver
import InetFuzzHarness

// inetkit-fuzz TARGET [libFuzzer options] [CORPUS...]: runs libFuzzer on one target. The
// target's name also goes into the environment, so the processes libFuzzer starts itself
// (-fork, -jobs, -merge) run the same one; its arguments are passed on unchanged.

/// Standard error, written with write(2) (the C `stderr` global is not concurrency-safe).
func report(_ message: String) {
    let text = Array("inetkit-fuzz: \(message)\n".utf8)
    _ = text.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

func fail(_ message: String) -> Never {
    report(message)
    exit(2)
}

var arguments = CommandLine.arguments
if arguments.count > 1, arguments[1] == "--list" {
    for target in FuzzTargets.all { print("\(target.name)\t\(target.maximumLength)\t\(target.summary)") }
    exit(0)
}
var name = getenv("INETKIT_FUZZ_TARGET").map { String(cString: $0) }
if arguments.count > 1, !arguments[1].hasPrefix("-"), FuzzTargets.named(arguments[1]) != nil {
    name = arguments.remove(at: 1)
}
guard let name, let target = FuzzTargets.named(name) else {
    fail("usage: inetkit-fuzz TARGET [libFuzzer options] [CORPUS...]; targets: \(FuzzTargets.all.map(\.name).joined(separator: ", "))")
}
setenv("INETKIT_FUZZ_TARGET", name, 1)
nonisolated(unsafe) let selected = target

/// libFuzzer's callback, under the name its runtime expects to find as well.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = size == 0 || data == nil ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    if let finding = selected.run(bytes) {
        report("\(selected.name): \(finding)")
        abort()
    }
    return 0
}

var argc = Int32(arguments.count)
var storage = arguments.map { strdup($0) } + [nil]
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = storage.withUnsafeMutableBufferPointer { buffer in
    let copy = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: buffer.count)
    copy.initialize(from: buffer.baseAddress!, count: buffer.count)
    return copy
}
exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzOne(data, size) })
