import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import InetCore
import InetMail
import NIOCore
import NIOPosix

/// `<status_path>/api/v1/messages…`: the mail SMTP captured, read straight from its Maildir
/// (every worker and restart sees the same): list and search, one message (headers, text, HTML,
/// attachments), its raw `.eml`, delete, and `latest?to=…&wait=10` that waits for a message
/// to arrive (what an integration test needs).
struct MailAPI: Sendable {
    let host: HostDirectory
    let prefix: String

    /// Messages looked at by a list or search (the newest).
    static let maximumScanned = 10_000
    /// The largest message read whole (view and raw); larger ones are cut.
    static let maximumMessageBytes = 64 << 20
    /// The longest `wait`, seconds.
    static let maximumWait = 60.0

    /// Whether the host is shutting down (a waiting `latest` gives up at once).
    let stopping: @Sendable () -> Bool

    init(host: HostDirectory, statusPath: String, stopping: @escaping @Sendable () -> Bool) {
        self.host = host
        prefix = statusPath + "/api/v1/messages"
        self.stopping = stopping
    }

    func handles(_ path: String) -> Bool {
        path == prefix || path.hasPrefix(prefix + "/")
    }

    /// The methods a path under the prefix takes: a message itself may be deleted.
    func allowed(_ path: String) -> String {
        let parts = String(path.dropFirst(prefix.count)).split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        return parts.count == 1 && parts.first != "latest" ? "GET, HEAD, DELETE" : "GET, HEAD"
    }

    func respond(_ request: Request) async -> Response {
        guard let root = host.mailDirectory else { return Self.error(.notFound, "no mail store on this host") }
        let store = Maildir(root: root)
        let query = request.uri.queryParameters
        let rest = String(request.uri.path.dropFirst(prefix.count))
        let parts = rest.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map(String.init)
        if request.method == .delete {
            guard parts.count == 1, let id = Self.identifier(parts[0]) else { return Self.error(.notFound, "no such message") }
            return await Self.offLoop {
                guard let found = Self.find(id, in: store) else { return Self.error(.notFound, "no message \(id)") }
                do { try store.remove(found.message) } catch { return Self.error(.internalServerError, "\(error)") }
                return Response(status: .noContent, headers: [.cacheControl: "no-store"])
            }
        }
        switch parts.count {
        case 0:
            guard let filter = Filter(query) else { return Self.error(.badRequest, "limit must be 1 to 1000") }
            return await Self.offLoop {
                let items = Self.search(store, filter: filter)
                return Self.json("{\"messages\":[\(items.map { $0.json }.joined(separator: ",\n"))]}\n")
            }
        case 1 where parts[0] == "latest":
            guard let filter = Filter(query) else { return Self.error(.badRequest, "limit must be 1 to 1000") }
            guard let wait = Self.seconds(query["wait"]) else { return Self.error(.badRequest, "wait must be 0 to 60 seconds (e.g. 10 or 10s)") }
            let deadline = Date().addingTimeInterval(wait)
            while true {
                let found = try? await NIOThreadPool.singleton.runIfActive { Self.search(store, filter: filter.first) }
                if let newest = found?.first {
                    return Self.json(newest.json + "\n")
                }
                if Date() >= deadline || Task.isCancelled || stopping() { return Self.error(.notFound, "no matching message") }
                try? await Task.sleep(nanoseconds: 100_000_000)
            }
        case 1, 2:
            guard let id = Self.identifier(parts[0]), parts.count == 1 || parts[1] == "raw" || parts[1] == "html" else { return Self.error(.notFound, "Not found.") }
            if parts.count == 2 && parts[1] == "raw" { return await raw(id, store: store) }
            if parts.count == 2 { return await html(id, store: store) }
            return await Self.offLoop {
                guard let found = Self.find(id, in: store), let bytes = Self.read(found.message.path, limit: Self.maximumMessageBytes) else {
                    return Self.error(.notFound, "no message \(id)")
                }
                let view = MailMessageView(bytes: bytes)
                let summary = Summary(mailbox: found.mailbox, message: found.message, headers: view.headers)
                var text = "{" + summary.members
                text += ",\"headers\":[" + view.headers.map { "[\(JSON.quote($0.name)),\(JSON.quote($0.value))]" }.joined(separator: ",") + "]"
                text += ",\"text\":" + (view.text.map(JSON.quote) ?? "null")
                text += ",\"html\":" + (view.html.map(JSON.quote) ?? "null")
                text += ",\"attachments\":[" + view.attachments.map {
                    "{\"filename\":\(JSON.quote($0.filename)),\"content_type\":\(JSON.quote($0.contentType)),\"size\":\($0.size)}"
                }.joined(separator: ",") + "]}\n"
                return Self.json(text)
            }
        default:
            return Self.error(.notFound, "Not found.")
        }
    }

    /// The `.eml`, streamed in chunks read off the event loop: each is written only once the
    /// client took the one before (a client that does not read holds one chunk, not the file).
    private func raw(_ id: String, store: Maildir) async -> Response {
        let found = try? await NIOThreadPool.singleton.runIfActive { () -> (path: String, size: Int)? in
            guard let found = Self.find(id, in: store) else { return nil }
            var info = stat()
            guard stat(found.message.path, &info) == 0 else { return nil }
            return (found.message.path, Int(info.st_size))
        }
        guard let found = found ?? nil else { return Self.error(.notFound, "no message \(id)") }
        let size = min(found.size, Self.maximumMessageBytes)
        return Self.download(path: found.path, size: size, type: "message/rfc822", name: Self.fileName(id) + ".eml")
    }

    /// A file as a download (never shown by the browser), streamed in 64 KiB chunks read off the
    /// event loop, each written only once the client took the one before.
    static func download(path: String, size: Int, type: String, name: String) -> Response {
        Response(status: .ok, headers: [
            .contentType: type, .cacheControl: "no-store",
            .contentDisposition: "attachment; filename=\"\(name)\"",
            HTTPField.Name("X-Content-Type-Options")!: "nosniff",
            .contentSecurityPolicy: "sandbox; default-src 'none'",
        ], body: ResponseBody(contentLength: size) { writer in
            var offset = 0
            while offset < size {
                let start = offset
                let chunk = try await NIOThreadPool.singleton.runIfActive { Self.read(path, from: start, count: min(65_536, size - start)) }
                // The file shrank or went meanwhile: the response ends short (the client sees it).
                guard let chunk, !chunk.isEmpty else { break }
                try await writer.write(ByteBuffer(bytes: chunk))
                offset += chunk.count
            }
            try await writer.finish(nil)
        })
    }

    /// The HTML part alone, for the dashboard's sandboxed frame: the CSP lets it run no script,
    /// submit no form and load nothing from anywhere (images only as `data:`), whatever it says.
    private func html(_ id: String, store: Maildir) async -> Response {
        await Self.offLoop {
            guard let found = Self.find(id, in: store), let bytes = Self.read(found.message.path, limit: Self.maximumMessageBytes) else {
                return Self.error(.notFound, "no message \(id)")
            }
            guard let html = MailMessageView(bytes: bytes).html else { return Self.error(.notFound, "message \(id) has no HTML part") }
            return Response(status: .ok, headers: [
                .contentType: "text/html; charset=utf-8", .contentLength: String(html.utf8.count), .cacheControl: "no-store",
                HTTPField.Name("X-Content-Type-Options")!: "nosniff",
                .contentSecurityPolicy: Self.messagePolicy,
            ], body: .init(byteBuffer: ByteBuffer(string: html)))
        }
    }

    /// What a captured HTML part may do: nothing but show itself, framed by the dashboard.
    static let messagePolicy = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'; form-action 'none'; base-uri 'none'"

    // MARK: - Finding messages

    /// What a list or search keeps.
    struct Filter: Sendable {
        var to: String?
        var from: String?
        var subject: String?
        var limit: Int

        init?(_ query: FlatDictionary<Substring, Substring>) {
            to = query["to"].map { String($0).lowercased() }
            from = query["from"].map { String($0).lowercased() }
            subject = query["subject"].map { String($0).lowercased() }
            guard let limit = HostLive.number(query["limit"], default: 50), (1...1000).contains(limit) else { return nil }
            self.limit = limit
        }

        var first: Filter {
            var one = self
            one.limit = 1
            return one
        }

        func matches(_ summary: Summary) -> Bool {
            if let to, !(summary.mailbox.lowercased().contains(to) || summary.to.lowercased().contains(to) || summary.cc.lowercased().contains(to)) { return false }
            if let from, !summary.from.lowercased().contains(from) { return false }
            if let subject, !summary.subject.lowercased().contains(subject) { return false }
            return true
        }
    }

    /// One message as the list shows it.
    struct Summary: Sendable {
        var id: String
        var mailbox: String
        var from: String
        var to: String
        var cc: String
        var subject: String
        var date: String
        var messageID: String
        var size: Int
        var received: Int

        init(mailbox: String, message: MaildirMessage, headers: [(name: String, value: String)]) {
            func field(_ name: String) -> String { headers.first { $0.name.lowercased() == name }?.value ?? "" }
            id = message.uniqueID
            self.mailbox = mailbox
            from = field("from")
            to = field("to")
            cc = field("cc")
            subject = field("subject")
            date = field("date")
            messageID = field("message-id")
            size = message.size
            // From a file name: kept within what a time can be (no overflow below).
            received = min(max(message.seconds, 0), 1 << 40)
        }

        var members: String {
            "\"id\":\(JSON.quote(id)),\"mailbox\":\(JSON.quote(mailbox)),\"from\":\(JSON.quote(from)),\"to\":\(JSON.quote(to)),"
                + "\"cc\":\(JSON.quote(cc)),\"subject\":\(JSON.quote(subject)),\"date\":\(JSON.quote(date)),"
                + "\"message_id\":\(JSON.quote(messageID)),\"size\":\(size),\"received\":\(JSON.quote(EventBody.isoTime(received * 1000)))"
        }

        var json: String { "{" + members + "}" }
    }

    static func search(_ store: Maildir, filter: Filter) -> [Summary] {
        var found: [Summary] = []
        for (mailbox, message) in store.allMessages(limit: maximumScanned) {
            guard let head = read(message.path, limit: 64 * 1024) else { continue }
            let summary = Summary(mailbox: mailbox, message: message, headers: MailMessageView.headerFields(head[...]))
            if filter.matches(summary) {
                found.append(summary)
                if found.count >= filter.limit { break }
            }
        }
        return found
    }

    static func find(_ id: String, in store: Maildir) -> (mailbox: String, message: MaildirMessage)? {
        store.allMessages(limit: maximumScanned).first { $0.message.uniqueID == id }
    }

    /// A message id from the path: percent-decoded, printable, no slash.
    static func identifier(_ segment: String) -> String? {
        guard let decoded = segment.removingPercentEncoding, !decoded.isEmpty, decoded.utf8.count <= 70,
              decoded.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F && $0 != "/" }) else { return nil }
        return decoded
    }

    static func fileName(_ id: String) -> String {
        String(id.unicodeScalars.map { CharacterSet.alphanumerics.contains($0) || $0 == "." || $0 == "-" ? Character($0) : "_" })
    }

    /// `10`, `10s`, `2.5` seconds, within 0…60 (default 0).
    static func seconds(_ text: Substring?) -> Double? {
        guard var text else { return 0 }
        if text.hasSuffix("s") { text = text.dropLast() }
        guard text.utf8.count <= 8, let value = Double(text), value.isFinite, (0...maximumWait).contains(value) else { return nil }
        return value
    }

    static func read(_ path: String, limit: Int) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while out.count < limit {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, min($0.count, limit - out.count)) }
            if count < 0 { if errno == EINTR { continue } else { return nil } }
            if count == 0 { break }
            out.append(contentsOf: chunk[0..<count])
        }
        return out
    }

    /// Up to `count` bytes of a file from `offset`.
    static func read(_ path: String, from offset: Int, count: Int) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out = [UInt8](repeating: 0, count: count)
        let got = out.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(offset)) }
        guard got >= 0 else { return nil }
        out.removeLast(count - got)
        return out
    }

    static func offLoop(_ body: @escaping @Sendable () -> Response) async -> Response {
        (try? await NIOThreadPool.singleton.runIfActive(body)) ?? error(.serviceUnavailable, "the server is stopping")
    }

    static func json(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [
            .contentType: "application/json", .contentLength: String(text.utf8.count), .cacheControl: "no-store",
            HTTPField.Name("X-Content-Type-Options")!: "nosniff",
        ], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func error(_ status: HTTPResponse.Status, _ message: String) -> Response {
        json("{\"error\":\(JSON.quote(message))}\n", status: status)
    }
}
