import ArgumentParser
import Foundation
import InetCore
import InetSimple
import InetWho

struct FingerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "finger",
        abstract: "Ask a finger server about a user, or for its list of users (RFC 1288).",
        discussion: "inetkit finger alice@127.0.0.1, inetkit finger @127.0.0.1:10079, inetkit finger --long @host")

    @Argument(help: "[USER]@HOST[:PORT] (default: the list of users of 127.0.0.1).")
    var query: String = "@127.0.0.1"

    @Flag(name: [.customShort("l"), .long], help: "Ask for the long form (/W).")
    var long = false

    @Option(name: .long, help: "Seconds to wait for the answer.")
    var timeout = 5.0

    func validate() throws {
        // The seconds become nanoseconds in an Int64: bounded before they do.
        guard timeout > 0, timeout <= 3600 else { throw ValidationError("--timeout must be 0...3600 s") }
    }

    @Option(name: .long, help: "Port offset for a host without a port (default: 0 if this process may bind ports < 1024, else 10000).")
    var portOffset: Int?

    func run() async throws {
        let user: Substring
        let host: String?
        if let at = query.lastIndex(of: "@") {
            user = query[..<at]
            host = String(query[query.index(after: at)...])
        } else {
            user = Substring(query)
            host = nil
        }
        let target = try ServerAddress.parse(host, wellKnown: 79, portOffset: portOffset)
        let line = (long ? "/W " : "") + user
        let answer = try await QueryClient.ask(host: target.host, port: target.port, query: line.trimmingCharacters(in: .whitespaces), timeout: timeout)
        // What the server sends reaches this terminal: only printable text and line ends.
        let text = answer.split(separator: 0x0a, omittingEmptySubsequences: false)
            .map { FingerText.printable($0.filter { $0 != 0x0d }, limit: 4096) }.joined(separator: "\n")
        print("[\(target)]")
        print(text.hasSuffix("\n") ? String(text.dropLast()) : text)
    }
}

struct IdentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ident",
        abstract: "Ask an ident server who owns a connection (RFC 1413): inetkit ident HOST SERVERPORT,CLIENTPORT",
        discussion: "SERVERPORT is the port on HOST, CLIENTPORT the port on this machine, of a connection between the two.")

    @Argument(help: "HOST[:PORT] of the ident server.")
    var host: String

    @Argument(help: "SERVERPORT,CLIENTPORT")
    var ports: String

    @Option(name: .long, help: "Seconds to wait for the answer.")
    var timeout = 5.0

    func validate() throws {
        // The seconds become nanoseconds in an Int64: bounded before they do.
        guard timeout > 0, timeout <= 3600 else { throw ValidationError("--timeout must be 0...3600 s") }
    }

    @Option(name: .long, help: "Port offset for a host without a port (default: 0 if this process may bind ports < 1024, else 10000).")
    var portOffset: Int?

    func run() async throws {
        guard case .success(let query) = IdentQuery.parse(Array(ports.utf8)) else {
            throw ValidationError("give the ports as SERVERPORT,CLIENTPORT (each 1...65535)")
        }
        let target = try ServerAddress.parse(host, wellKnown: 113, portOffset: portOffset)
        let answer = try await QueryClient.ask(host: target.host, port: target.port, query: "\(query.serverPort) , \(query.clientPort)", timeout: timeout, limit: 4096)
        let line = FingerText.printable(answer.prefix { $0 != 0x0a && $0 != 0x0d }, limit: 1000)
        print(line)
        if line.contains(": ERROR :") { throw ExitCode(1) }
    }
}
