import InetCore

#if canImport(Glibc)
import Glibc
#endif

/// The startup table and the ports file.
enum PortsReport {
    static func table(_ listeners: [Listener], offset: Int) -> String {
        table(rows: listeners.map { ($0.service, $0.transport, $0.display) }, offset: offset)
    }

    static func table(rows listeners: [(service: String, transport: Transport, display: String)], offset: Int, workers: Int? = nil) -> String {
        var rows = [["SERVICE", "TRANSPORT", "ADDRESS"]]
        rows += listeners.map { [$0.service, $0.transport.rawValue, $0.display] }
        let across = workers.map { " in \($0) worker processes" } ?? ""
        let header = "inetkit: serving \(listeners.count) listeners\(across) (port offset \(offset))\n"
        return header + TextTable.render(rows)
    }

    /// Writes `{"echo": {"tcp": 10007, "udp": 10007}, ...}` atomically (temporary file, rename).
    static func writeJSON(_ ports: [String: [Transport: Int]], order: [String], to path: String) throws {
        let entries = order.compactMap { name -> String? in
            guard let byTransport = ports[name] else { return nil }
            let inner = byTransport.keys.sorted().map { "\"\($0.rawValue)\": \(byTransport[$0]!)" }.joined(separator: ", ")
            return "  \(JSON.quote(name)): {\(inner)}"
        }
        let text = "{\n" + entries.joined(separator: ",\n") + "\n}\n"
        let temporary = path + ".tmp.\(getpid())"
        guard let file = fopen(temporary, "wb") else { throw PortsFileError(path: path, reason: String(cString: strerror(errno))) }
        let written = fwrite(text, 1, text.utf8.count, file)
        fclose(file)
        guard written == text.utf8.count, rename(temporary, path) == 0 else {
            unlink(temporary)
            throw PortsFileError(path: path, reason: String(cString: strerror(errno)))
        }
    }

    struct PortsFileError: Error, CustomStringConvertible {
        var path: String
        var reason: String
        var description: String { "cannot write ports file \(path): \(reason)" }
    }
}

/// Left-aligned columns separated by two spaces.
enum TextTable {
    static func render(_ rows: [[String]]) -> String {
        guard let columns = rows.map(\.count).max() else { return "" }
        var widths = Array(repeating: 0, count: columns)
        for row in rows {
            for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) }
        }
        return rows.map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[index] - cell.count)
            }.joined(separator: "  ")
        }.joined(separator: "\n") + "\n"
    }
}
