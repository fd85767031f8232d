import ArgumentParser
import Foundation
import InetCore
import InetSimple
import InetNTP
import NIOPosix

struct NTPCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ntp",
        abstract: "Ask NTP servers for the time and print offset, delay, stratum and reference, like sntp.",
        discussion: "inetkit ntp 127.0.0.1 [HOST[:PORT]...]; with --count N, a load test: N requests with --concurrency in flight.")

    @Argument(help: "Servers as HOST[:PORT] (default 127.0.0.1 on the NTP port under the port rule).")
    var servers: [String] = []

    @Option(name: .long, help: "Seconds to wait for each answer.")
    var timeout = 2.0

    @Option(name: .long, help: "Requests sent before giving up on a silent server.")
    var attempts = 3

    @Option(name: .long, help: "NTP version to ask with (1-4).")
    var version = 4

    @Option(name: .long, help: "Port offset for servers without a port (default: 0 if this process may bind ports < 1024, else 10000).")
    var portOffset: Int?

    @Option(name: .long, help: "Load test: send N requests per server and print the rate.")
    var count: Int?

    @Option(name: .long, help: "Requests in flight in a load test.")
    var concurrency = 1

    func validate() throws {
        guard (1...4).contains(version) else { throw ValidationError("--version must be 1...4") }
        guard timeout > 0, timeout <= 3600, attempts >= 1, attempts <= 1000 else { throw ValidationError("--timeout must be 0...3600 s, --attempts 1...1000") }
        guard concurrency >= 1, concurrency <= 100_000 else { throw ValidationError("--concurrency must be 1...100000") }
        if let count { guard count >= 1 else { throw ValidationError("--count must be at least 1") } }
    }

    func run() async throws {
        let targets = try (servers.isEmpty ? [nil] : servers.map { Optional($0) }).map {
            try ServerAddress.parse($0, wellKnown: 123, portOffset: portOffset)
        }
        if let count {
            var failed = false
            for target in targets {
                let result = try NTPLoad.run(host: target.host, port: target.port, count: count, inFlight: concurrency, timeout: timeout)
                print(String(format: "%@: %d requests in %.2f s: %.1f requests/s, %d lost (%d in flight)", target.description,
                             result.answered, result.seconds, Double(result.answered) / max(result.seconds, 1e-9), result.lost, concurrency))
                if result.answered == 0 { failed = true }
            }
            if failed { throw ExitCode(1) }
            return
        }
        let group = MultiThreadedEventLoopGroup.singleton
        var rows = [["SERVER", "TIME", "OFFSET", "DELAY", "STRATUM", "REFERENCE", "LEAP"]]
        var failures: [String] = []
        for target in targets {
            do {
                let m = try await NTPClient.query(host: target.host, port: target.port, timeout: timeout, attempts: attempts, version: UInt8(version), group: group)
                if let code = m.kissCode {
                    rows.append([target.description, "-", "-", "-", "0", code, "kiss-o'-death"])
                    failures.append("\(target): Kiss-o'-Death \(code)")
                    continue
                }
                rows.append([target.description, m.serverTimeText, String(format: "%+.6f", m.offset), String(format: "%.6f", m.delay),
                             "\(m.reply.stratum)", m.reply.referenceText, m.leapText])
            } catch {
                rows.append([target.description, "-", "-", "-", "-", "-", "no answer"])
                failures.append("\(target): \(error)")
            }
        }
        print(TextTable.render(rows), terminator: "")
        for failure in failures { FileHandle.standardError.write(Data("inetkit ntp: \(failure)\n".utf8)) }
        if !failures.isEmpty { throw ExitCode(1) }
    }
}
