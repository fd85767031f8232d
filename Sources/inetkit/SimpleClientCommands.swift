import ArgumentParser
import Foundation
import InetCore
import InetSimple
import NIOPosix

struct EchoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "echo", abstract: "Send bytes to echo servers (RFC 862) and check they come back.")
    @OptionGroup var options: ClientOptions
    @OptionGroup var payload: PayloadOptions
    @Argument(help: "host[:port] ...") var targets: [String]

    func run() async throws {
        try await runSimpleClient(.echo, options, targets: targets, payload: payload.payload)
    }
}

struct DiscardCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "discard", abstract: "Send bytes to discard servers (RFC 863).")
    @OptionGroup var options: ClientOptions
    @OptionGroup var payload: PayloadOptions
    @Argument(help: "host[:port] ...") var targets: [String]

    func run() async throws {
        try await runSimpleClient(.discard, options, targets: targets, payload: payload.payload)
    }
}

struct DaytimeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "daytime", abstract: "Ask daytime servers for the date and time (RFC 867).")
    @OptionGroup var options: ClientOptions
    @Argument(help: "host[:port] ...") var targets: [String]

    func run() async throws { try await runSimpleClient(.daytime, options, targets: targets) }
}

struct QotdCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "qotd", abstract: "Ask quote-of-the-day servers for a quote (RFC 865).")
    @OptionGroup var options: ClientOptions
    @Argument(help: "host[:port] ...") var targets: [String]

    func run() async throws { try await runSimpleClient(.qotd, options, targets: targets) }
}

struct ChargenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "chargen", abstract: "Read from character generators (RFC 864) and check the pattern.")
    @OptionGroup var options: ClientOptions
    @Option(name: .long, help: "TCP: bytes to read before closing (default 7400, 100 lines).")
    var bytes = 7_400
    @Argument(help: "host[:port] ...") var targets: [String]

    func run() async throws { try await runSimpleClient(.chargen, options, targets: targets, chargenBytes: bytes) }
}

struct TimeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "time", abstract: "Ask time servers for the time (RFC 868).")
    @OptionGroup var options: ClientOptions
    @Argument(help: "host[:port] ...") var targets: [String]

    func run() async throws { try await runSimpleClient(.time, options, targets: targets) }
}

struct PayloadOptions: ParsableArguments {
    @Option(name: .long, help: "The text to send.")
    var message: String?

    @Option(name: .long, help: "Send this many bytes of a known pattern instead of --message.")
    var bytes: Int?

    func validate() throws {
        if message != nil && bytes != nil { throw ValidationError("give --message or --bytes, not both") }
        if let bytes, bytes < 0 { throw ValidationError("--bytes must not be negative") }
    }

    var payload: SimpleRequest.Payload {
        if let bytes { return .pattern(bytes) }
        return .message(message ?? "hello from inetkit\r\n")
    }
}

/// Runs a client command: one line per request (unless --quiet), a summary, and exit 1 when
/// any request failed.
func runSimpleClient(_ kind: SimpleKind, _ options: ClientOptions, targets arguments: [String], payload: SimpleRequest.Payload = .message("hello from inetkit\r\n"), chargenBytes: Int = 7_400) async throws {
    guard !arguments.isEmpty else { throw ValidationError("give at least one target (host[:port])") }
    let transport = options.transport
    let port = try options.defaultPort(kind, transport: transport)
    let targets = try arguments.map { try Target.parse($0, defaultPort: port) }
    let request = SimpleRequest(kind: kind, transport: transport, payload: payload, chargenBytes: chargenBytes, timeout: options.timeout)
    let client = SimpleClient(group: MultiThreadedEventLoopGroup.singleton)
    let quiet = options.quiet
    let started = Date()
    let results = await client.run(request, targets: targets, count: options.count, concurrency: options.concurrency) { result in
        guard !quiet else { return }
        let line = "\(kind.rawValue)  \(result.transport)  \(result.target)  \(result.ok ? "ok" : "FAILED")  \(ClientReport.milliseconds(result.roundTrip))  \(result.detail)\n"
        FileHandle.standardOutput.write(Data(line.utf8))
    }
    let elapsed = Date().timeIntervalSince(started)
    print(ClientReport.summary(kind: kind, transport: transport, results: results, elapsed: elapsed))
    if results.contains(where: { !$0.ok }) { throw ExitCode(1) }
}

enum ClientReport {
    static func milliseconds(_ seconds: Double) -> String {
        String(format: "%.3f ms", seconds * 1000)
    }

    static func summary(kind: SimpleKind, transport: Transport, results: [SimpleResult], elapsed: Double) -> String {
        let ok = results.filter(\.ok)
        let failed = results.count - ok.count
        let targets = Set(results.map(\.target)).count
        var text = "\(kind.rawValue)/\(transport): \(results.count) request\(results.count == 1 ? "" : "s") to \(targets) target\(targets == 1 ? "" : "s"): \(ok.count) ok, \(failed) failed"
        if failed > 0 {
            var reasons: [String: Int] = [:]
            for result in results where !result.ok { reasons[result.detail, default: 0] += 1 }
            text += " (" + reasons.sorted { $0.value > $1.value }.prefix(3).map { "\($0.key) ×\($0.value)" }.joined(separator: "; ") + ")"
        }
        let times = ok.map(\.roundTrip).sorted()
        if !times.isEmpty {
            func pick(_ fraction: Double) -> Double { times[min(times.count - 1, Int(Double(times.count - 1) * fraction))] }
            text += "\n  round trip: min \(milliseconds(times.first!)), p50 \(milliseconds(pick(0.5))), p99 \(milliseconds(pick(0.99))), max \(milliseconds(times.last!))"
        }
        if elapsed > 0 {
            let bytes = results.reduce(0) { $0 + $1.bytesSent + $1.bytesReceived }
            text += String(format: "\n  %.0f requests/s over %.3f s", Double(results.count) / elapsed, elapsed)
            if bytes > 0 { text += String(format: ", %.1f MB/s (sent + received)", Double(bytes) / elapsed / 1e6) }
        }
        return text
    }
}
