import InetCore
import NIOConcurrencyHelpers
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// What the fast path answers for one request path: the response head worked out once (status
/// line and every field but `Date` and `Connection`), and the body: a cached small file, or a
/// file to send with sendfile(2).
final class FastAnswer {
    enum Body {
        case cached(ByteBuffer)
        case file(path: String, size: Int)
    }

    /// `HTTP/1.1 200 OK\r\n…Server: InetKit\r\n` (no Date, no Connection, no final CRLF).
    let okHead: [UInt8]
    /// The same with `304 Not Modified`.
    let notModifiedHead: [UInt8]
    /// The ETag, for If-None-Match.
    let eTag: [UInt8]
    let body: Body
    let size: Int
    /// The same fields for HTTP/2 (lower-case names; no :status, no date).
    let http2Fields: [(String, String)]

    init(body: Body, size: Int, eTag: String, lastModified: String, contentType: String?) {
        self.body = body
        self.size = size
        self.eTag = Array(eTag.utf8)
        var fields = "Content-Length: \(size)\r\nLast-Modified: \(lastModified)\r\nETag: \(eTag)\r\nAccept-Ranges: bytes\r\n"
        if let contentType { fields += "Content-Type: \(contentType)\r\n" }
        var http2 = [("content-length", String(size)), ("last-modified", lastModified), ("etag", eTag), ("accept-ranges", "bytes")]
        if let contentType { http2.append(("content-type", contentType)) }
        http2.append(("server", "InetKit"))
        http2Fields = http2
        fields += "Server: InetKit\r\n"
        okHead = Array(("HTTP/1.1 200 OK\r\n" + fields).utf8)
        notModifiedHead = Array(("HTTP/1.1 304 Not Modified\r\n" + fields).utf8)
    }

    /// Whether an If-None-Match value names this answer's ETag (one of its comma-separated
    /// entity tags, compared as sent: the tags this server makes are weak and clients echo them).
    func matches(ifNoneMatch value: UnsafeRawBufferPointer) -> Bool {
        var start = 0
        for index in 0...value.count {
            guard index == value.count || value[index] == UInt8(ascii: ",") else { continue }
            var lower = start
            var upper = index
            while lower < upper, value[lower] == 0x20 || value[lower] == 0x09 { lower += 1 }
            while upper > lower, value[upper - 1] == 0x20 || value[upper - 1] == 0x09 { upper -= 1 }
            if upper - lower == eTag.count, eTag.withUnsafeBytes({ memcmp($0.baseAddress!, value.baseAddress! + lower, eTag.count) == 0 }) {
                return true
            }
            start = index + 1
        }
        return false
    }
}

/// The fast path's memory on one event loop, used only there (no lock on the way of a
/// request): each path's answer, checked against the file system at most once a second
/// (nginx's open_file_cache_valid, at 1 s), the Date field of the current second, and the
/// access line it writes.
final class FastAnswers {
    /// Paths remembered per loop; past this the memory starts afresh.
    static let maximumPaths = 4096

    private let fastPath: StaticFastPath
    private var answers: [String: (second: Int, answer: FastAnswer?)] = [:]
    private var dateSecond = -1
    private(set) var dateField: [UInt8] = []
    private var dateValueSecond = -1
    private var dateValueText = ""
    let accessLine = AccessLine()

    init(fastPath: StaticFastPath) {
        self.fastPath = fastPath
    }

    /// `Date: …\r\n` for the current second.
    func date(now second: Int) -> [UInt8] {
        if second != dateSecond {
            dateSecond = second
            dateField = Array("Date: \(NIOLockedValueBoxCache.format(second))\r\n".utf8)
        }
        return dateField
    }

    /// The Date value of the current second, as a string (for HTTP/2).
    func dateValue(now second: Int) -> String {
        if second != dateValueSecond {
            dateValueSecond = second
            dateValueText = NIOLockedValueBoxCache.format(second)
        }
        return dateValueText
    }

    /// The answer for a request path (raw, before percent-decoding), or nil when the full
    /// server must answer it (a folder, a status page, a file missing or unreadable).
    func answer(path: UnsafeRawBufferPointer, now second: Int) -> FastAnswer? {
        let key = String(decoding: path, as: UTF8.self)
        if let remembered = answers[key], remembered.second == second { return remembered.answer }
        let answer = fastPath.answer(rawPath: Substring(key))
        if answers.count >= Self.maximumPaths { answers.removeAll(keepingCapacity: true) }
        answers[key] = (second, answer)
        return answer
    }
}

/// One `FastAnswers` per event loop, made on first use.
final class FastAnswersByLoop: Sendable {
    private let fastPath: StaticFastPath
    private let byLoop = NIOLockedValueBox<[ObjectIdentifier: LoopBound]>([:])

    /// Handed to the loop it belongs to only.
    private struct LoopBound: @unchecked Sendable {
        let answers: FastAnswers
    }

    init(fastPath: StaticFastPath) {
        self.fastPath = fastPath
    }

    /// The answers of `loop` (call on that loop).
    func answers(on loop: any EventLoop) -> FastAnswers {
        byLoop.withLockedValue { map in
            let key = ObjectIdentifier(loop)
            if let found = map[key] { return found.answers }
            let made = FastAnswers(fastPath: fastPath)
            map[key] = LoopBound(answers: made)
            return made
        }
    }
}
