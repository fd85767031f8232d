import Foundation

/// The HTML page for a folder without index.html: name, size and date of each entry,
/// folders first, hidden (dot) files left out.
enum DirectoryListing {
    struct Entry: Equatable {
        var name: String
        var isDirectory: Bool
        var size: Int
        var modified: Date
    }

    static func entries(of folder: String) -> [Entry]? {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return nil }
        return names.filter { !$0.hasPrefix(".") }.compactMap { name -> Entry? in
            let path = folder + "/" + name
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: path) else { return nil }
            let type = attributes[.type] as? FileAttributeType
            var isDirectory = type == .typeDirectory
            if type == .typeSymbolicLink {
                var flag: ObjCBool = false
                _ = FileManager.default.fileExists(atPath: path, isDirectory: &flag)
                isDirectory = flag.boolValue
            }
            return Entry(name: name, isDirectory: isDirectory, size: (attributes[.size] as? Int) ?? 0,
                         modified: (attributes[.modificationDate] as? Date) ?? Date(timeIntervalSince1970: 0))
        }.sorted { ($0.isDirectory ? 0 : 1, $0.name) < ($1.isDirectory ? 0 : 1, $1.name) }
    }

    static func html(path: String, entries: [Entry]) -> String {
        let title = "Index of \(HTML.escape(path))"
        var rows = ""
        if path != "/" { rows += "<tr><td><a href=\"../\">../</a></td><td></td><td></td></tr>\n" }
        for entry in entries {
            let name = entry.isDirectory ? entry.name + "/" : entry.name
            let href = percentEncode(entry.name) + (entry.isDirectory ? "/" : "")
            rows += "<tr><td><a href=\"\(href)\">\(HTML.escape(name))</a></td>"
                + "<td class=\"size\">\(entry.isDirectory ? "-" : String(entry.size))</td>"
                + "<td>\(timestamp(entry.modified))</td></tr>\n"
        }
        return """
            <!DOCTYPE html>
            <html><head><meta charset="utf-8"><title>\(title)</title>
            <style>body{font-family:sans-serif;margin:2em}td{padding:0 1.5em 0 0}.size{text-align:right}</style></head>
            <body><h1>\(title)</h1>
            <table><tr><th>Name</th><th>Size</th><th>Modified (UTC)</th></tr>
            \(rows)</table><hr><p>InetKit</p></body></html>

            """
    }

    static func percentEncode(_ name: String) -> String {
        var allowed = CharacterSet.urlPathAllowed
        allowed.remove(charactersIn: "/?#;")
        return name.addingPercentEncoding(withAllowedCharacters: allowed) ?? name
    }

    static func timestamp(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd HH:mm"
        return formatter.string(from: date)
    }
}
