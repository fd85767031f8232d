import ArgumentParser
import Foundation
import InetCore

/// `inetkit events`: the host's event journal in the terminal, `tail -f` style.
struct EventsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events",
        abstract: "Print the host's events (every connection, request, query, message and transfer).",
        discussion: """
            Reads the journal a running (or stopped) host writes under <data_dir>/events/events.jsonl.
            With --follow, keeps printing new events as they arrive, across rotations, until Ctrl-C.
            Live over HTTP instead: curl -N http://127.0.0.1/_inetkit/events
            """)

    @Option(name: .long, help: "The host's config file (for its data_dir).")
    var config: String?

    @Option(name: .long, help: "The host's data folder (default: the config's data_dir, else ./inetkit-data).")
    var dataDir: String?

    @Flag(name: [.short, .long], help: "Keep printing new events as they arrive.")
    var follow = false

    @Option(name: .long, parsing: .upToNextOption, help: "Only these services (e.g. --service http dns).")
    var service: [String] = []

    @Option(name: .long, parsing: .upToNextOption, help: "Only these kinds (e.g. --kind http.request 'dns.*').")
    var kind: [String] = []

    @Option(name: [.customShort("n"), .customLong("lines")], help: "Events shown from the end of the journal before following (0 with --follow: only new ones).")
    var lines: Int = 20

    @Flag(name: .long, help: "Print each event as its JSON line.")
    var json = false

    func validate() throws {
        guard lines >= 0 else { throw ValidationError("--lines must be 0 or more") }
    }

    func run() throws {
        let folder = try Self.dataFolder(config: config, dataDir: dataDir) + "/events"
        let path = folder + "/" + EventJournal.fileName
        let services = Set(service.map { $0.lowercased() })
        let kinds = kind
        func wanted(_ event: [String: Any]) -> Bool {
            if !services.isEmpty, !services.contains((event["service"] as? String) ?? "") { return false }
            if !kinds.isEmpty {
                let name = (event["kind"] as? String) ?? ""
                return kinds.contains { $0.hasSuffix("*") ? name.hasPrefix($0.dropLast()) : name == $0 }
            }
            return true
        }
        var reader = JournalTail(path: path)
        if !reader.exists && !follow {
            throw ValidationError("no event journal at \(path) (is the host running with this data_dir? events.journal: true?)")
        }
        // The last `lines` matching events first.
        var backlog: [String] = []
        for line in reader.readAvailable() {
            guard let event = Self.parse(line), wanted(event) else { continue }
            backlog.append(line)
            if backlog.count > lines { backlog.removeFirst(backlog.count - lines) }
        }
        for line in backlog { print(render(line)) }
        fflush(nil)
        guard follow else { return }
        signal(SIGPIPE, SIG_DFL)
        while true {
            var printed = false
            for line in reader.readAvailable() {
                guard let event = Self.parse(line), wanted(event) else { continue }
                print(render(line))
                printed = true
            }
            if printed { fflush(nil) }
            usleep(150_000)
        }
    }

    /// The host's data folder: `--data-dir`, else the config's `data_dir`, else the default.
    static func dataFolder(config: String?, dataDir: String?) throws -> String {
        if let dataDir { return dataDir }
        if let config {
            do {
                return try HostSetup.loadConfigAndText(config).0.dataDirectory
            } catch {
                throw ValidationError("\(error)")
            }
        }
        return HostConfig().dataDirectory
    }

    static func parse(_ line: String) -> [String: Any]? {
        guard let data = line.data(using: .utf8) else { return nil }
        return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
    }

    private func render(_ line: String) -> String {
        guard !json, let event = Self.parse(line) else { return line }
        return Self.describe(event)
    }

    /// One line a learner can read: time, id, service, what happened.
    /// A member of a parsed event as text (lists joined), "" when absent.
    static func field(_ event: [String: Any], _ key: String, separator: String = ",") -> String {
        switch event[key] {
        case let value as String: return value
        case let value as NSNumber: return value.stringValue
        case let value as [Any]: return value.map { "\($0)" }.joined(separator: separator)
        default: return ""
        }
    }

    static func describe(_ event: [String: Any]) -> String {
        func text(_ key: String) -> String { field(event, key) }
        var time = text("time")
        if let t = time.firstIndex(of: "T") { time = String(time[time.index(after: t)...].prefix(12)) }
        let kind = text("kind")
        let peer = text("peer")
        var summary: String
        switch kind {
        case "connection.open": summary = "open \(text("transport")) from \(peer) to port \(text("port"))"
        case "connection.close": summary = "closed after \(text("duration_ms")) ms, \(text("bytes_in")) bytes in, \(text("bytes_out")) out (\(text("outcome")))"
        case "connection.refused": summary = "refused \(peer): \(text("outcome"))"
        case "line": summary = "\(text("dir")): \(text("text"))"
        case "http.request": summary = "\(peer) \(text("method")) \(text("target")) \(text("version")) -> \(text("status")) (\(text("bytes_out")) bytes)"
        case "dns.query": summary = "\(peer) \(text("qname")) \(text("qtype")) -> \(text("rcode")), \(text("answers")) answers (\(text("answered_from")))"
        case "smtp.message": summary = "message \(text("queue_id")) from <\(text("from"))> to \(text("to")), \(text("size")) bytes"
        case "ftp.transfer": summary = "\(text("direction")) \(text("file")) by \(text("user")), \(text("bytes")) bytes" + (event["sha256"] != nil ? " sha256 \(text("sha256"))" : "")
        case "snmp.request": summary = "\(peer) \(text("pdu")) \(text("oids"))" + (event["community_ok"] as? Bool == false ? " (community refused)" : "")
        case "ntp.request":
            summary = "\(peer) NTPv\(text("version")) \(text("mode"))"
                + (event["refused"] != nil ? ": refused, \(text("refused"))" : " -> stratum \(text("stratum")), leap \(text("leap")), ref \(text("reference"))")
        case "syslog.message":
            summary = "\(peer) \(text("facility")).\(text("severity")) "
                + (event["hostname"] != nil ? text("hostname") + " " : "") + (event["app"] != nil ? text("app") + ": " : "") + text("message")
        case "finger.query": summary = "\(peer) " + (event["verbose"] as? Bool == true ? "/W " : "") + (event["user"] != nil ? text("user") : "(everyone)") + " -> \(text("outcome"))"
        case "ident.query":
            summary = "\(peer) " + (event["server_port"] != nil ? "\(text("server_port")) , \(text("client_port")) -> " : "") + text("answer") + (event["user"] != nil ? " " + text("user") : "")
        default:
            let skip: Set<String> = ["id", "time", "service", "kind", "conn", "transport", "peer"]
            summary = (peer.isEmpty ? "" : peer + " ") + event.keys.filter { !skip.contains($0) }.sorted().map { "\($0)=\(text($0))" }.joined(separator: " ")
        }
        let connection = event["conn"].map { "#\($0)" } ?? ""
        return "\(time) \(text("id").leftPad(7)) \(text("service").padding(toLength: 7, withPad: " ", startingAt: 0)) \(kind.padding(toLength: 16, withPad: " ", startingAt: 0)) \(connection.isEmpty ? "" : connection + " ")\(summary)"
    }
}

/// Reads the lines appended to a journal file since the last look, reopening it when it was
/// rotated (a new inode, or smaller than what was read).
struct JournalTail {
    let path: String
    private var handle: FileHandle?
    private var inode: UInt64 = 0
    private var offset: UInt64 = 0
    private var partial: [UInt8] = []

    init(path: String) {
        self.path = path
    }

    var exists: Bool { FileManager.default.fileExists(atPath: path) }

    mutating func readAvailable() -> [String] {
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        let currentInode = (attributes?[.systemFileNumber] as? NSNumber)?.uint64Value ?? 0
        let size = (attributes?[.size] as? NSNumber)?.uint64Value ?? 0
        if handle == nil || currentInode != inode || size < offset {
            var lines: [String] = []
            // The rest of the old file first (written before it was renamed).
            if let handle { lines += drain(handle) }
            try? handle?.close()
            handle = FileHandle(forReadingAtPath: path)
            inode = currentInode
            offset = 0
            partial.removeAll()
            if let handle { lines += drain(handle) }
            return lines
        }
        guard let handle else { return [] }
        return drain(handle)
    }

    private mutating func drain(_ handle: FileHandle) -> [String] {
        var lines: [String] = []
        while let chunk = try? handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            offset += UInt64(chunk.count)
            Self.split(&partial, chunk) { lines.append(String(decoding: $0, as: UTF8.self)) }
        }
        return lines
    }

    /// Each complete line of `pending` followed by `chunk`, in order; the unfinished rest stays in
    /// `pending` (shifted once per chunk, not once per line). A "line" longer than any event can
    /// be is not one: it is dropped.
    static func split(_ pending: inout [UInt8], _ chunk: Data, _ line: (ArraySlice<UInt8>) -> Void) {
        pending.append(contentsOf: chunk)
        var start = 0
        while let newline = pending[start...].firstIndex(of: 0x0A) {
            if newline > start { line(pending[start..<newline]) }
            start = newline + 1
        }
        pending.removeFirst(start)
        if pending.count > 1 << 20 { pending.removeAll() }
    }
}

extension String {
    fileprivate func leftPad(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
