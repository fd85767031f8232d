import ArgumentParser
import AsyncHTTPClient
import Foundation
import InetCore
import InetHTTP
import NIOCore
import NIOHTTP1

struct HTTPCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "http",
        abstract: "Fetch URLs over HTTP: one (body to stdout or -o), or many at once with a summary.",
        subcommands: [HTTPGetCommand.self, HTTPHeadCommand.self])
}

struct HTTPClientOptions: ParsableArguments {
    @Flag(name: .shortAndLong, help: "Print the status line and headers (before the body).")
    var include = false

    @Option(name: .shortAndLong, help: "Write the body to this file (one URL, --count 1).")
    var output: String?

    @Option(name: .long, help: "Requests in flight at once.")
    var concurrency = 1

    @Option(name: .long, help: "Fetch each URL this many times.")
    var count = 1

    @Option(name: .long, help: "Seconds allowed for each request.")
    var timeout = 30.0

    @Flag(name: .long, help: "Exit non-zero on 4xx and 5xx answers too.")
    var fail = false

    @Flag(name: [.customShort("L"), .long], help: "Follow redirects.")
    var location = false

    @Option(name: [.customShort("H"), .long], help: "Add a request header, 'Name: value'.")
    var header: [String] = []

    @Flag(name: .shortAndLong, help: "With several requests: print only the summary.")
    var quiet = false

    @Argument(help: "URLs, e.g. http://127.0.0.1:10080/")
    var urls: [String]

    func validate() throws {
        guard !urls.isEmpty else { throw ValidationError("give at least one URL") }
        guard concurrency >= 1, concurrency <= 10_000 else { throw ValidationError("--concurrency must be 1...10000") }
        guard count >= 1 else { throw ValidationError("--count must be at least 1") }
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
        if output != nil && (urls.count > 1 || count > 1) { throw ValidationError("-o takes one URL and --count 1") }
        for line in header where !line.contains(":") { throw ValidationError("--header '\(line)' is not 'Name: value'") }
    }

    func fetcher(method: HTTPMethod) -> HTTPFetcher {
        var fetcher = HTTPFetcher()
        fetcher.method = method
        fetcher.timeout = .seconds(clamping: timeout)
        fetcher.followRedirects = location
        fetcher.headers = header.map { line in
            let parts = line.split(separator: ":", maxSplits: 1)
            return (String(parts[0]).trimming(" "), parts.count > 1 ? String(parts[1]).trimming(" ") : "")
        }
        return fetcher
    }
}

struct HTTPGetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "get", abstract: "GET URLs.")
    @OptionGroup var options: HTTPClientOptions
    func run() async throws { try await runHTTPClient(options, method: .GET) }
}

struct HTTPHeadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "head", abstract: "HEAD URLs: status and headers only.")
    @OptionGroup var options: HTTPClientOptions
    func run() async throws {
        var options = options
        options.include = true
        try await runHTTPClient(options, method: .HEAD)
    }
}

func runHTTPClient(_ options: HTTPClientOptions, method: HTTPMethod) async throws {
    let fetcher = options.fetcher(method: method)
    let stderr = FileHandle.standardError
    func failed(_ result: HTTPFetchResult) -> Bool {
        result.status == nil || (options.fail && (result.status ?? 0) >= 400)
    }
    if options.urls.count == 1 && options.count == 1 {
        // One fetch: like curl, the body goes to stdout or -o, with a progress bar on a terminal.
        let sink: HTTPBodySink = method == .HEAD ? .discard : (options.output.map { .file($0) } ?? .standardOutput)
        let showProgress = isatty(2) == 1 && (options.output != nil || isatty(1) == 0)
        let progress = showProgress ? TransferProgress() : nil
        var onProgress: (@Sendable (Int, Int?) -> Void)?
        if let progress {
            onProgress = { received, total in progress.update(received, total) }
        }
        var onHead: (@Sendable (String) -> Void)?
        if options.include {
            onHead = { head in FileHandle.standardOutput.write(Data(head.utf8)) }
        }
        let result = await fetcher.fetchOne(options.urls[0], sink: sink, progress: onProgress, onHead: onHead)
        progress?.finish()
        if let error = result.error {
            stderr.write(Data("inetkit: \(options.urls[0]): \(error)\n".utf8))
            throw ExitCode(1)
        }
        if failed(result) {
            stderr.write(Data("inetkit: \(options.urls[0]): \(result.status!) \(result.reason)\n".utf8))
            throw ExitCode(22)
        }
        return
    }
    let started = Date()
    let quiet = options.quiet
    let results = await fetcher.run(urls: options.urls, count: options.count, concurrency: options.concurrency) { result in
        guard !quiet else { return }
        let status = result.status.map { "\($0)" } ?? "ERR"
        let line = "\(status)  \(result.bytes) bytes  \(String(format: "%.3f ms", result.duration * 1000))  \(result.url)\(result.error.map { "  \($0)" } ?? "")\n"
        FileHandle.standardOutput.write(Data(line.utf8))
    }
    print(HTTPSummary.text(results, elapsed: Date().timeIntervalSince(started)))
    if results.contains(where: failed) { throw ExitCode(1) }
}

enum HTTPSummary {
    static func text(_ results: [HTTPFetchResult], elapsed: Double) -> String {
        var statuses: [String: Int] = [:]
        for result in results { statuses[result.status.map { "\($0)" } ?? (result.error ?? "error"), default: 0] += 1 }
        var text = "\(results.count) requests: " + statuses.sorted { $0.value > $1.value }.map { "\($0.key) ×\($0.value)" }.joined(separator: ", ")
        let times = results.filter { $0.status != nil }.map(\.duration).sorted()
        if !times.isEmpty {
            func pick(_ q: Double) -> String { String(format: "%.3f ms", times[min(times.count - 1, Int(Double(times.count - 1) * q))] * 1000) }
            text += "\n  latency: p50 \(pick(0.5)), p90 \(pick(0.9)), p99 \(pick(0.99)), max \(pick(1))"
        }
        let bytes = results.reduce(0) { $0 + $1.bytes }
        text += String(format: "\n  %.0f requests/s, %.1f MB/s over %.3f s", Double(results.count) / max(elapsed, 1e-9), Double(bytes) / max(elapsed, 1e-9) / 1e6, elapsed)
        return text
    }
}

