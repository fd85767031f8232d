import AsyncHTTPClient
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// One fetch as the `inetkit http` client reports it.
public struct HTTPFetchResult: Sendable {
    public var url: String
    /// The status code, nil when no response came (refused, timed out, bad URL...).
    public var status: Int?
    public var reason: String = ""
    public var version: String = ""
    public var headers: [(name: String, value: String)] = []
    /// Body bytes received (0 for HEAD).
    public var bytes: Int = 0
    /// Seconds from the start of the request to the end of the body.
    public var duration: Double = 0
    /// Why there is no response.
    public var error: String?
}

/// Where a fetched body goes.
public enum HTTPBodySink: Sendable {
    case discard
    case standardOutput
    case file(String)
}

/// Fetches URLs with AsyncHTTPClient, streaming bodies (never held whole in memory), one at a
/// time or many at once over a pool of keep-alive connections.
public struct HTTPFetcher: Sendable {
    public var method: HTTPMethod = .GET
    public var timeout: TimeAmount = .seconds(30)
    public var followRedirects = false
    public var headers: [(String, String)] = []

    public init() {}

    /// Runs every URL `count` times with `concurrency` requests in flight; calls `onResult`
    /// as each ends.
    public func run(
        urls: [String], count: Int, concurrency: Int,
        onResult: @escaping @Sendable (HTTPFetchResult) -> Void = { _ in }
    ) async -> [HTTPFetchResult] {
        let client = makeClient(connectionsPerHost: concurrency)
        let jobs = urls.flatMap { Array(repeating: $0, count: count) }
        let next = NIOLockedValueBox(0)
        let results = NIOLockedValueBox<[HTTPFetchResult]>([])
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<max(1, min(concurrency, jobs.count)) {
                group.addTask {
                    while true {
                        let index = next.withLockedValue { value -> Int in
                            defer { value += 1 }
                            return value
                        }
                        guard index < jobs.count else { return }
                        let result = await fetch(jobs[index], client: client, sink: .discard, progress: nil)
                        results.withLockedValue { $0.append(result) }
                        onResult(result)
                    }
                }
            }
        }
        try? await client.shutdown()
        return results.withLockedValue { $0 }
    }

    /// Fetches one URL into `sink`; `progress` gets (received, expected total) as the body arrives.
    /// `onHead` gets the status line and headers (as text) before the body is written.
    public func fetchOne(
        _ url: String, sink: HTTPBodySink, progress: (@Sendable (Int, Int?) -> Void)?,
        onHead: (@Sendable (String) -> Void)? = nil
    ) async -> HTTPFetchResult {
        let client = makeClient(connectionsPerHost: 1)
        let result = await fetch(url, client: client, sink: sink, progress: progress, onHead: onHead)
        try? await client.shutdown()
        return result
    }

    private func makeClient(connectionsPerHost: Int) -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = followRedirects ? .follow(max: 10, allowCycles: false) : .disallow
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = max(1, connectionsPerHost)
        configuration.timeout.connect = timeout
        configuration.decompression = .disabled
        // Like curl: a refused connection is an answer, not something to retry until the deadline.
        configuration.connectionPool.retryConnectionEstablishment = false
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    private func fetch(
        _ url: String, client: HTTPClient, sink: HTTPBodySink, progress: (@Sendable (Int, Int?) -> Void)?,
        onHead: (@Sendable (String) -> Void)? = nil
    ) async -> HTTPFetchResult {
        let started = NIODeadline.now()
        var result = HTTPFetchResult(url: url)
        do {
            var request = HTTPClientRequest(url: url)
            request.method = method
            for (name, value) in headers { request.headers.add(name: name, value: value) }
            let response = try await client.execute(request, timeout: timeout)
            result.status = Int(response.status.code)
            result.reason = response.status.reasonPhrase
            result.version = "HTTP/\(response.version.major).\(response.version.minor)"
            result.headers = response.headers.map { (name: $0.name, value: $0.value) }
            if let onHead {
                onHead("\(result.version) \(result.status!) \(result.reason)\r\n"
                    + result.headers.map { "\($0.name): \($0.value)\r\n" }.joined() + "\r\n")
            }
            let expected = response.headers.first(name: "content-length").flatMap(Int.init)
            let output = try BodyOutput(sink)
            defer { output.close() }
            for try await chunk in response.body {
                result.bytes += chunk.readableBytes
                try output.write(chunk)
                progress?(result.bytes, expected)
            }
        } catch {
            result.error = Self.describe(error)
        }
        result.duration = Double((NIODeadline.now() - started).nanoseconds) / 1e9
        return result
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError {
            if [.invalidURL, .emptyHost, .emptyScheme].contains(error) || "\(error)".contains("unsupportedScheme") { return "bad URL (\(error))" }
            if error == .connectTimeout { return "timed out (connect)" }
            if error == .deadlineExceeded || error == .readTimeout { return "timed out" }
            if error == .remoteConnectionClosed { return "closed by server" }
            return "\(error)"
        }
        if let error = error as? NIOConnectionError, let first = error.connectionErrors.first { return describe(first.error) }
        if let io = error as? IOError {
            return io.errnoCode == ECONNREFUSED ? "refused" : String(cString: strerror(io.errnoCode))
        }
        let text = "\(error)"
        if text.contains("connectTimeout") { return "timed out (connect)" }
        if text.contains("Connection refused") || text.contains("errno: 111") { return "refused" }
        return text
    }
}

/// Writes body chunks to standard output or a file as they arrive.
private final class BodyOutput {
    private let handle: FileHandle?

    init(_ sink: HTTPBodySink) throws {
        switch sink {
        case .discard:
            handle = nil
        case .standardOutput:
            handle = FileHandle.standardOutput
        case .file(let path):
            guard FileManager.default.createFile(atPath: path, contents: nil), let file = FileHandle(forWritingAtPath: path) else {
                throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: path])
            }
            handle = file
        }
    }

    func write(_ buffer: ByteBuffer) throws {
        guard let handle else { return }
        try handle.write(contentsOf: Data(buffer.readableBytesView))
    }

    func close() {
        if let handle, handle !== FileHandle.standardOutput { try? handle.close() }
    }
}
