#if DEBUG
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import HTTPTypes
import Hummingbird
import InetCore
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
@testable import InetHTTP

enum HTTPTargets {
    /// `Range` against a file size: a range the site serves lies inside the file.
    static let range = FuzzTarget(name: "http-range", summary: "the Range header against a file size", maximumLength: 1024) { bytes in
        var input = FuzzInput(bytes)
        let size = Int(input.byte()) << 24 | input.uint16() << 8 | Int(input.byte())
        let header = String(decoding: input.rest(), as: UTF8.self)
        switch ByteRange.decide(header, size: size) {
        case .satisfiable(let range):
            guard range.lowerBound >= 0, range.upperBound < size else { return "range \(range) outside a file of \(size) bytes" }
        case .ignore, .unsatisfiable:
            break
        }
        return nil
    }

    /// A request target resolved in the site folder: what is found is inside it.
    static let path = FuzzTarget(name: "http-path", summary: "request paths: percent-decoding, .. and links, resolved in a site folder", maximumLength: 2048) { bytes in
        let root = SitePath.realPath(FuzzSandbox.site) ?? FuzzSandbox.site
        let raw = String(decoding: bytes, as: UTF8.self)
        guard case .success(let decoded) = SitePath.check(rawPath: Substring(raw)) else { return nil }
        if case .found(let path, _) = SitePath.resolve(decoded, root: root), !FuzzSandbox.insideSite(path, root: root) {
            return "\(raw) resolved to \(path), outside \(root)"
        }
        return nil
    }

    static let siteSettings: HTTPSettings = {
        var settings = try! HTTPSettings(options: ServiceOptions(reader: nil, dataDirectory: FuzzSandbox.root, configDirectory: ""))
        settings.root = FuzzSandbox.site
        return settings
    }()

    static let site = Site(settings: siteSettings, host: HostDirectory(), logger: .init(label: "fuzz"))

    /// The fast handler's head scanner against llhttp: every head the scanner takes must be,
    /// for llhttp, one whole request of the same method, target and version, without a body,
    /// ending where the scanner says; and the fast handler itself, fed the bytes, never traps.
    static let headScan = FuzzTarget(name: "http-head-scan", summary: "the fast path's request head scanner, differential against llhttp", maximumLength: 4096) { bytes in
        let result = bytes.withUnsafeBytes { HTTPHeadScanner.scan($0, maximumTarget: 1024, maximumHead: 2048) }
        switch result {
        case .notFast:
            break
        case .incomplete:
            guard bytes.count < 2048 else { return "\(bytes.count) bytes, past max_header_bytes, still incomplete" }
        case .complete(let head):
            guard head.length <= bytes.count, head.length <= 2048 else { return "a head of \(head.length) bytes" }
            let channel = EmbeddedChannel()
            defer { _ = try? channel.finish(acceptAlreadyClosed: true) }
            guard (try? channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))) != nil else { return nil }
            do {
                try channel.writeInbound(ByteBuffer(bytes: bytes[0..<head.length]))
            } catch {
                return "llhttp refused a head the scanner took: \(error)"
            }
            var parts: [HTTPServerRequestPart] = []
            while let part = try? channel.readInbound(as: HTTPServerRequestPart.self) { parts.append(part) }
            guard parts.count == 2, case .head(let parsed) = parts[0], case .end = parts[1] else { return "llhttp read \(parts) from a head the scanner took" }
            let target = String(decoding: bytes[head.target], as: UTF8.self)
            guard parsed.uri == target else { return "target \(target) but llhttp read \(parsed.uri)" }
            guard parsed.method == (head.isHead ? .HEAD : .GET) else { return "method differs: \(parsed.method)" }
            guard parsed.version == (head.http10 ? .http1_0 : .http1_1) else { return "version differs: \(parsed.version)" }
            guard parsed.isKeepAlive == head.keepAlive else { return "keep-alive \(head.keepAlive), llhttp \(parsed.isKeepAlive)" }
            // (llhttp keeps the trailing whitespace of a value, which RFC 9110 §5.5 leaves out.)
            let llhttpHost = parsed.headers["host"].map { $0.trimmingCharacters(in: CharacterSet(charactersIn: " \t")) }
            if let host = head.host, llhttpHost != [String(decoding: bytes[host], as: UTF8.self)] {
                return "host differs: \(parsed.headers["host"])"
            }
        }
        // The handler on the whole input: answers or hands over, never traps.
        let channel = EmbeddedChannel()
        defer { _ = try? channel.finish(acceptAlreadyClosed: true) }
        guard let fastPath = site.fastPath,
              (try? channel.pipeline.syncOperations.addHandler(HTTPFastHandler(
                  settings: siteSettings, accessLog: AccessLog(logger: .init(label: "fuzz")), answers: FastAnswersByLoop(fastPath: fastPath),
                  front: HTTP1FrontHandler(lines: .init([]), headerTimeout: .seconds(5), fastPath: nil, accessLog: AccessLog(logger: .init(label: "fuzz")),
                                           gate: HTTPInputGate(), armAtStart: false)))) != nil else { return nil }
        _ = try? channel.writeInbound(ByteBuffer(bytes: bytes))
        while (try? channel.readOutbound(as: IOData.self)) != nil {}
        return nil
    }

    /// A request head as a client sends it, parsed by the server's HTTP/1 decoder and answered
    /// by the fast path and by the router (the path guard, ranges, conditionals, listings).
    static let request = FuzzTarget(name: "http-request", summary: "an HTTP/1 request head: parsed, then answered by the fast path and the router", maximumLength: 8192) { bytes in
        let channel = EmbeddedChannel()
        defer { _ = try? channel.finish(acceptAlreadyClosed: true) }
        guard (try? channel.pipeline.syncOperations.addHandlers([
            ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)),
            HTTP1ToHTTPServerCodec(secure: false),
        ])) != nil else { return nil }
        guard (try? channel.writeInbound(ByteBuffer(bytes: bytes))) != nil else { return nil }
        var heads: [HTTPRequest] = []
        while let part = try? channel.readInbound(as: HTTPRequestPart.self) {
            if case .head(let head) = part { heads.append(head) }
        }
        for head in heads.prefix(4) {
            if let old = try? HTTPRequestHead(head), let answer = site.fastPath?.answer(old) {
                if case .file(let handle, _) = answer.body { try? handle.close() }
                guard answer.head.status.code < 500 else { return "the fast path answered \(answer.head.status)" }
            }
            let response = Blocking.wait { await site.respond(Request(head: head, body: RequestBody(buffer: ByteBuffer())), channel: channel) }
            guard response.status.code != 500 else { return "the router answered 500 for \(head)" }
            if response.status == .partialContent {
                guard let range = response.headers[.contentRange], range.hasPrefix("bytes ") else { return "206 without Content-Range" }
            }
        }
        return nil
    }
}

extension HTTPRequestHead {
    /// The NIOHTTP1 head the fast path reads, from swift-http-types' request.
    init(_ request: HTTPRequest) throws {
        var headers = HTTPHeaders()
        for field in request.headerFields { headers.add(name: field.name.rawName, value: field.value) }
        self.init(version: .http1_1, method: HTTPMethod(rawValue: request.method.rawValue), uri: request.path ?? "/", headers: headers)
    }
}

/// Runs async work to its end from synchronous fuzzing code.
enum Blocking {
    static func wait<T: Sendable>(_ work: @escaping @Sendable () async -> T) -> T {
        let semaphore = DispatchSemaphore(value: 0)
        let box = ResultBox<T>()
        Task {
            box.value = await work()
            semaphore.signal()
        }
        semaphore.wait()
        return box.value!
    }

    /// Written by one task before the semaphore is signalled, read after it: ordered by it.
    private final class ResultBox<T>: @unchecked Sendable {
        var value: T?
    }
}
#endif
