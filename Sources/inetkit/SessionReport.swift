import ArgumentParser
import Foundation
import InetCore
import InetHTTP

/// What happened in one session of the host (from its last `host.start` in the journal), in
/// the spirit of INetSim's report: per service the connections and datagrams, and every DNS name
/// asked, HTTP URL requested, message received, file transferred and login tried. Written as
/// text, JSON and one self-contained HTML page into `<data_dir>/reports/`.
struct SessionReport {
    /// The most distinct entries kept per list (names, URLs, messages…); the rest are counted.
    static let maximumEntries = 10_000

    struct ServiceLine {
        var service: String
        var connections = 0
        var datagrams = 0
        var bytesIn = 0
        var bytesOut = 0
        var peers = Set<String>()
    }

    struct Entry: Equatable {
        var time: String
        var peer: String
        var text: String
    }

    var started = ""
    var ended = ""
    var firstID = 0
    var lastID = 0
    var services: [String: ServiceLine] = [:]
    var dnsNames: [String: Int] = [:]
    var urls: [String: Int] = [:]
    var messages: [Entry] = []
    var transfers: [Entry] = []
    var logins: [Entry] = []
    var snmp: [String: Int] = [:]
    var left = 0
    /// The journal was longer than `maximumJournalBytes`: older events were not read.
    var cut = false
    var budget = maximumJournalBytes

    /// The most of the journal a report reads (its newest files): a longer session's start is
    /// left out, and the report says so. At shutdown a quarter of it, so stopping stays quick.
    static let maximumJournalBytes: UInt64 = 256 << 20
    static let shutdownJournalBytes: UInt64 = 64 << 20

    /// The session in the journal files of `folder` (the rotated ones first).
    static func read(folder: String, budget: UInt64 = maximumJournalBytes) -> SessionReport {
        var report = SessionReport()
        report.budget = budget
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).compactMap { name -> (Int, String)? in
            if name == EventJournal.fileName { return (Int.max, name) }
            guard name.hasPrefix("events."), name.hasSuffix(".jsonl"),
                  let number = Int(name.dropFirst("events.".count).dropLast(".jsonl".count)) else { return nil }
            return (number, name)
        }.sorted { $0.0 < $1.0 }
        // The newest files, within the budget.
        var budget = budget
        var chosen: [String] = []
        for (_, name) in names.reversed() {
            let size = ((try? FileManager.default.attributesOfItem(atPath: folder + "/" + name))?[.size] as? NSNumber)?.uint64Value ?? 0
            guard size <= budget || chosen.isEmpty else { report.cut = true; break }
            budget -= min(budget, size)
            chosen.insert(name, at: 0)
        }
        for name in chosen {
            guard let handle = FileHandle(forReadingAtPath: folder + "/" + name) else { continue }
            var partial: [UInt8] = []
            while let chunk = try? handle.read(upToCount: 1 << 20), !chunk.isEmpty {
                JournalTail.split(&partial, chunk) { line in
                    // Transcript lines are most of a busy journal and say nothing the report
                    // lists: skipped before they are parsed.
                    guard !Self.isTranscript(line) else { return }
                    if let event = (try? JSONSerialization.jsonObject(with: Data(line))) as? [String: Any] { report.add(event) }
                }
            }
            try? handle.close()
        }
        return report
    }

    /// Whether a journal line is a `line` event (`"kind":"line"` among its first members).
    static func isTranscript(_ line: ArraySlice<UInt8>) -> Bool {
        let marker = Array(#","kind":"line","#.utf8)
        let head = line.prefix(200)
        guard head.count >= marker.count else { return false }
        var index = head.startIndex
        while index + marker.count <= head.endIndex {
            if head[index] == marker[0], head[index..<(index + marker.count)].elementsEqual(marker) { return true }
            index += 1
        }
        return false
    }

    mutating func add(_ event: [String: Any]) {
        func text(_ key: String) -> String { EventsCommand.field(event, key, separator: ", ") }
        // From a file: kept within bounds, so the sums below cannot overflow.
        func number(_ key: String) -> Int { min(max((event[key] as? NSNumber)?.intValue ?? 0, 0), 1 << 50) }
        let kind = text("kind")
        if kind == "host.start" {
            // A new session: what came before belongs to an earlier one.
            let budget = budget
            self = SessionReport()
            self.budget = budget
            started = text("time")
            firstID = number("id")
        }
        guard !kind.isEmpty else { return }
        lastID = max(lastID, number("id"))
        ended = text("time")
        let service = text("service")
        let time = text("time")
        let peer = text("peer")
        if !service.isEmpty, service != "inetkit" {
            var line = services[service] ?? ServiceLine(service: service)
            switch kind {
            case "connection.open": line.connections += 1
            case "connection.close":
                line.bytesIn += number("bytes_in")
                line.bytesOut += number("bytes_out")
            default:
                if event["conn"] == nil, event["bytes_in"] != nil {
                    line.datagrams += 1
                    line.bytesIn += number("bytes_in")
                    line.bytesOut += number("bytes_out")
                }
            }
            if let colon = peer.lastIndex(of: ":"), colon > peer.startIndex, line.peers.count < Self.maximumEntries {
                line.peers.insert(String(peer[..<colon]))
            }
            services[service] = line
        }
        func bump(_ table: inout [String: Int], _ key: String) {
            if table[key] != nil || table.count < Self.maximumEntries { table[key, default: 0] += 1 } else { left += 1 }
        }
        func append(_ list: inout [Entry], _ entry: Entry) {
            if list.count < Self.maximumEntries { list.append(entry) } else { left += 1 }
        }
        switch kind {
        case "dns.query": bump(&dnsNames, "\(text("qname")) \(text("qtype"))")
        case "http.request": bump(&urls, "\(service == "https" ? "https" : "http")://\(text("host").nilIfEmpty ?? "-")\(text("target")) (\(text("method")), \(text("status")))")
        case "smtp.message":
            append(&messages, Entry(time: time, peer: peer, text: "\(text("queue_id")) from <\(text("from"))> to \(text("to")), \(text("size")) bytes, HELO \(text("helo"))"))
        case "ftp.transfer":
            var line = "\(text("direction")) \(text("file")) by \(text("user")), \(text("bytes")) bytes"
            if event["sha256"] != nil { line += ", SHA-256 \(text("sha256"))" }
            append(&transfers, Entry(time: time, peer: peer, text: line))
        case "ftp.login", "pop3.login":
            let ok = (event["ok"] as? Bool) == true
            // The password is in the event only with report.show_credentials: true.
            let password = event["password"] as? String
            append(&logins, Entry(time: time, peer: peer, text: "\(service): \(text("user")) / \(password ?? "****") \(ok ? "accepted" : "refused")"))
        case "snmp.request":
            bump(&snmp, "\(text("pdu").nilIfEmpty ?? "undecodable") \(text("oids"))\((event["community_ok"] as? Bool) == false ? " (community refused)" : "")")
        default: break
        }
    }

    // MARK: - Output

    var text: String {
        var out = "InetKit session report\n======================\n"
        out += "Session: \(started.nilIfEmpty ?? "(no start recorded)") to \(ended), events \(firstID)…\(lastID)\n"
        if cut { out += "(the session's first events are older than the newest \(budget >> 20) MiB of the journal: not read)\n" }
        out += "\n"
        out += "Services\n--------\n"
        for line in services.values.sorted(by: { $0.service < $1.service }) {
            out += "\(line.service): \(line.connections) connections, \(line.datagrams) datagrams, \(line.bytesIn) bytes in, \(line.bytesOut) out, \(line.peers.count) peers\n"
        }
        func section(_ title: String, _ rows: [String]) {
            out += "\n\(title) (\(rows.count))\n" + String(repeating: "-", count: title.count + 3 + String(rows.count).count) + "\n"
            for row in rows { out += row + "\n" }
        }
        section("DNS names asked", dnsNames.sorted { $0.key < $1.key }.map { "\($0.key)  ×\($0.value)" })
        section("HTTP URLs", urls.sorted { $0.key < $1.key }.map { "\($0.key)  ×\($0.value)" })
        section("Mail received", messages.map { "\($0.time) \($0.peer) \($0.text)" })
        section("Files transferred", transfers.map { "\($0.time) \($0.peer) \($0.text)" })
        section("Logins (passwords masked unless report.show_credentials: true)", logins.map { "\($0.time) \($0.peer) \($0.text)" })
        section("SNMP requests", snmp.sorted { $0.key < $1.key }.map { "\($0.key)  ×\($0.value)" })
        if left > 0 { out += "\n(\(left) more entries not listed)\n" }
        return out
    }

    var json: String {
        func quote(_ text: String) -> String { JSON.quote(text) }
        func entries(_ list: [Entry]) -> String {
            "[" + list.map { "{\"time\":\(quote($0.time)),\"peer\":\(quote($0.peer)),\"text\":\(quote($0.text))}" }.joined(separator: ",") + "]"
        }
        func counts(_ table: [String: Int]) -> String {
            "{" + table.sorted { $0.key < $1.key }.map { "\(quote($0.key)):\($0.value)" }.joined(separator: ",") + "}"
        }
        let lines = services.values.sorted { $0.service < $1.service }.map {
            "{\"service\":\(quote($0.service)),\"connections\":\($0.connections),\"datagrams\":\($0.datagrams),\"bytes_in\":\($0.bytesIn),\"bytes_out\":\($0.bytesOut),\"peers\":\($0.peers.count)}"
        }
        return "{\"started\":\(quote(started)),\"ended\":\(quote(ended)),\"first_id\":\(firstID),\"last_id\":\(lastID),"
            + "\"services\":[\(lines.joined(separator: ","))],\"dns_names\":\(counts(dnsNames)),\"http_urls\":\(counts(urls)),"
            + "\"mail\":\(entries(messages)),\"transfers\":\(entries(transfers)),\"logins\":\(entries(logins)),\"snmp\":\(counts(snmp)),\"not_listed\":\(left),\"start_not_read\":\(cut)}\n"
    }

    /// One page, no script, no remote load: every captured text escaped.
    var html: String {
        // Control characters too: a captured text stays on its line.
        func escape(_ text: String) -> String {
            HTML.escape(String(String.UnicodeScalarView(text.unicodeScalars.map { $0.value < 0x20 ? " " : $0 })))
        }
        var out = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">
            <meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
            <title>InetKit session report</title>
            <style>body{font:14px system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin-bottom:1.5em}
            td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}th{background:#f3f3f3}
            code{font-family:ui-monospace,monospace;word-break:break-all}</style></head><body>
            <h1>InetKit session report</h1>

            """
        out += "<p>Session \(escape(started)) to \(escape(ended)), events \(firstID)–\(lastID).</p>\n"
        out += "<h2>Services</h2><table><tr><th>service</th><th>connections</th><th>datagrams</th><th>bytes in</th><th>bytes out</th><th>peers</th></tr>\n"
        for line in services.values.sorted(by: { $0.service < $1.service }) {
            out += "<tr><td>\(escape(line.service))</td><td>\(line.connections)</td><td>\(line.datagrams)</td><td>\(line.bytesIn)</td><td>\(line.bytesOut)</td><td>\(line.peers.count)</td></tr>\n"
        }
        out += "</table>\n"
        func counted(_ title: String, _ table: [String: Int]) {
            out += "<h2>\(escape(title)) (\(table.count))</h2><table>\n"
            for (key, count) in table.sorted(by: { $0.key < $1.key }) { out += "<tr><td><code>\(escape(key))</code></td><td>\(count)</td></tr>\n" }
            out += "</table>\n"
        }
        func listed(_ title: String, _ list: [Entry]) {
            out += "<h2>\(escape(title)) (\(list.count))</h2><table>\n"
            for entry in list { out += "<tr><td>\(escape(entry.time))</td><td>\(escape(entry.peer))</td><td><code>\(escape(entry.text))</code></td></tr>\n" }
            out += "</table>\n"
        }
        counted("DNS names asked", dnsNames)
        counted("HTTP URLs", urls)
        listed("Mail received", messages)
        listed("Files transferred", transfers)
        listed("Logins (passwords masked unless report.show_credentials: true)", logins)
        counted("SNMP requests", snmp)
        if left > 0 { out += "<p>\(left) more entries not listed.</p>\n" }
        return out + "</body></html>\n"
    }

    /// Writes `report-<time>.{txt,json,html}` and `latest.*` into `<dataDirectory>/reports`.
    @discardableResult
    static func write(dataDirectory: String, budget: UInt64 = maximumJournalBytes) throws -> (paths: [String], report: SessionReport) {
        let base = dataDirectory.hasSuffix("/") ? dataDirectory : dataDirectory + "/"
        let report = read(folder: base + "events", budget: budget)
        let folder = base + "reports"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let stamp = (report.ended.nilIfEmpty ?? EventBody.isoTime(EventBody.now())).filter { $0.isNumber || $0 == "T" }
        var paths: [String] = []
        for (suffix, body) in [("txt", report.text), ("json", report.json), ("html", report.html)] {
            let path = "\(folder)/report-\(stamp).\(suffix)"
            try body.write(toFile: path, atomically: true, encoding: .utf8)
            try? FileManager.default.removeItem(atPath: "\(folder)/latest.\(suffix)")
            try body.write(toFile: "\(folder)/latest.\(suffix)", atomically: true, encoding: .utf8)
            paths.append(path)
        }
        return (paths, report)
    }
}

extension String {
    fileprivate var nilIfEmpty: String? { isEmpty ? nil : self }
}

/// `inetkit report`: the session report now, from the journal.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write the session report (text, JSON, HTML) into <data_dir>/reports/ and print the text.",
        discussion: "The session is everything in the event journal since the host last started. The host writes the same report when it stops.")

    @Option(name: .long, help: "The host's config file (for its data_dir).")
    var config: String?

    @Option(name: .long, help: "The host's data folder (default: the config's data_dir, else ./inetkit-data).")
    var dataDir: String?

    func run() throws {
        let folder = try EventsCommand.dataFolder(config: config, dataDir: dataDir)
        let (paths, report) = try SessionReport.write(dataDirectory: folder)
        print(report.text, terminator: "")
        print("\nwritten: \(paths.joined(separator: " "))")
    }
}
