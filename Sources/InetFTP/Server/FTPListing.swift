#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One directory entry with what LIST and MLSD show of it.
struct FTPEntry: Equatable, Sendable {
    var name: String
    var isDirectory: Bool
    var size: Int
    var modified: Int
    var mode: UInt32
    var links: Int

    /// lstat-like facts of a path (links followed for the type, like `ls -l` of a folder's entries
    /// shows the link itself).
    static func info(_ path: String, name: String) -> FTPEntry? {
        var info = Glibc.stat()
        guard lstat(path, &info) == 0 else { return nil }
        if (info.st_mode & S_IFMT) == S_IFLNK {
            var target = Glibc.stat()
            if followLink(path, &target) == 0 { info = target }
        }
        return FTPEntry(name: name, isDirectory: (info.st_mode & S_IFMT) == S_IFDIR, size: Int(info.st_size),
                        modified: Int(info.st_mtim.tv_sec), mode: UInt32(info.st_mode), links: Int(clamping: info.st_nlink))
    }

    /// The entries of a folder, sorted by name (dot-files hidden unless `all`).
    static func list(_ folder: String, all: Bool = false) -> [FTPEntry]? {
        guard let handle = opendir(folder) else { return nil }
        defer { closedir(handle) }
        var entries: [FTPEntry] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name == "." || name == ".." { continue }
            if !all, name.hasPrefix(".") { continue }
            if let info = info(folder + "/" + name, name: name) { entries.append(info) }
        }
        return entries.sorted { $0.name < $1.name }
    }

    /// `ls -l` form, which every client's parser knows:
    /// `-rw-r--r--   1 ftp      ftp          1234 Nov 30 09:12 name` (a year instead of the time
    /// for files older than six months).
    func longFormat(now: Int) -> String {
        var permissions = isDirectory ? "d" : "-"
        let bits: [(UInt32, Character)] = [(0o400, "r"), (0o200, "w"), (0o100, "x"), (0o040, "r"), (0o020, "w"), (0o010, "x"),
                                           (0o004, "r"), (0o002, "w"), (0o001, "x")]
        for (bit, letter) in bits { permissions.append(mode & bit != 0 ? letter : "-") }
        let sizeText = String(size)
        return "\(permissions) \(String(links).leftPad(4)) ftp      ftp      \(sizeText.leftPad(12)) \(Self.lsDate(modified, now: now)) \(name)"
    }

    /// RFC 3659 7 facts: `type=file;size=12;modify=20261130091200;perm=r; name`.
    func facts(writable: Bool, name shown: String? = nil) -> String {
        let type = isDirectory ? "dir" : "file"
        let perm = isDirectory ? (writable ? "elcmfp" : "el") : (writable ? "radfw" : "r")
        var text = "type=\(type);"
        if !isDirectory { text += "size=\(size);" }
        text += "modify=\(Self.factTime(modified));perm=\(perm); \(shown ?? name)"
        return text
    }

    static func lsDate(_ time: Int, now: Int) -> String {
        var seconds = time_t(time)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        let month = months[Int(parts.tm_mon)]
        let day = String(parts.tm_mday).leftPad(2)
        // Files dated anywhere in 64 bits of seconds (touch -d @…): no subtraction may trap.
        let (age, overflow) = now.subtractingReportingOverflow(time)
        if !overflow, age.magnitude < 180 * 86_400 {
            return "\(month) \(day) \(String(parts.tm_hour).zeroPad(2)):\(String(parts.tm_min).zeroPad(2))"
        }
        return "\(month) \(day)  \(Int(parts.tm_year) + 1900)"
    }

    /// `YYYYMMDDHHMMSS` in UTC (RFC 3659 2.3), for MDTM and MLSx.
    static func factTime(_ time: Int) -> String {
        var seconds = time_t(time)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return "\(Int(parts.tm_year) + 1900)" + [parts.tm_mon + 1, parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec]
            .map { String($0).zeroPad(2) }.joined()
    }
}

extension String {
    func leftPad(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }

    func zeroPad(_ width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}

/// stat(2), which the static `FTPEntry.info` would otherwise shadow.
private func followLink(_ path: String, _ buffer: inout Glibc.stat) -> Int32 {
    stat(path, &buffer)
}
