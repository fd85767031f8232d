#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore

/// A listener that could not be bound; startup stops with this one line.
public struct BindError: Error, CustomStringConvertible, Sendable {
    public var service: String
    public var transport: Transport
    public var address: String
    public var reason: String

    public var description: String {
        "cannot bind \(service)/\(transport) on \(address): \(reason)"
    }

    /// How `reason` begins for EADDRINUSE.
    static let addressInUse = String(cString: strerror(EADDRINUSE))

    static func reason(for error: any Error) -> String {
        if let bind = error as? BindError { return bind.reason }
        if let io = error as? IOError {
            var hint = ""
            if io.errnoCode == EACCES { hint = " (ports below 1024 need root or CAP_NET_BIND_SERVICE; try --port-offset 10000)" }
            if io.errnoCode == EADDRINUSE { hint = " (another program holds this port)" }
            return String(cString: strerror(io.errnoCode)) + hint
        }
        return "\(error)"
    }
}
