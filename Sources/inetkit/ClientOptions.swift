import ArgumentParser
import Foundation
import InetCore
import InetSimple

/// Options every simple-service client command takes.
struct ClientOptions: ParsableArguments {
    @Flag(name: .long, help: "Use UDP instead of TCP.")
    var udp = false

    @Option(name: .long, help: "Exchanges at once (connections or UDP sockets).")
    var concurrency = 1

    @Option(name: .long, help: "Requests per target.")
    var count = 1

    @Option(name: .long, help: "Seconds to wait for each exchange.")
    var timeout = 5.0

    @Option(name: .long, help: "Port offset for targets without a port (default: 0 if this process may bind ports < 1024, else 10000).")
    var portOffset: Int?

    @Option(name: .long, help: "Take default ports from a ports file written by 'inetkit serve --ports-file'.")
    var portsFile: String?

    @Flag(name: .shortAndLong, help: "Print only the summary, not one line per request.")
    var quiet = false

    func validate() throws {
        guard concurrency >= 1, concurrency <= 100_000 else { throw ValidationError("--concurrency must be 1...100000") }
        guard count >= 1 else { throw ValidationError("--count must be at least 1") }
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
    }

    var transport: Transport { udp ? .udp : .tcp }

    /// The port a target without one gets for `kind` on `transport`.
    func defaultPort(_ kind: SimpleKind, transport: Transport) throws -> Int {
        if let portsFile {
            let ports = try PortsFile.read(portsFile)
            guard let port = ports[kind.rawValue]?[transport.rawValue] else {
                throw ValidationError("\(portsFile) has no \(kind.rawValue)/\(transport.rawValue) port")
            }
            return port
        }
        return PortPlan.defaultPort(wellKnown: kind.wellKnownPort, explicitOffset: portOffset)
    }
}

enum PortsFile {
    static func read(_ path: String) throws -> [String: [String: Int]] {
        guard let data = FileManager.default.contents(atPath: path),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: [String: Int]] else {
            throw ValidationError("cannot read ports file \(path)")
        }
        return object
    }
}
