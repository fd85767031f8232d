#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A folder that could not be created.
public struct DirectoryError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var code: Int32

    public var description: String { "cannot create \(path): \(String(cString: strerror(code)))" }
}

/// Creates `path` and any missing parents (like `mkdir -p`); existing folders are fine.
public func createDirectories(_ path: String, mode: mode_t = 0o755) throws(DirectoryError) {
    var current = path.hasPrefix("/") ? "" : "."
    for component in path.split(separator: "/") {
        current += "/" + component
        if mkdir(current, mode) != 0, errno != EEXIST { throw DirectoryError(path: current, code: errno) }
    }
}
