#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The unprivileged account workers run as when InetKit is started as root.
public struct RunAccount: Sendable, Equatable, CustomStringConvertible {
    public var uid: uid_t
    public var gid: gid_t
    public var name: String

    public var description: String { "\(name) (uid \(uid), gid \(gid))" }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// `user:`/`group:` from the config when given (a name or a number); else the one who ran
    /// `sudo` (`SUDO_UID`/`SUDO_GID`); else `inetkit` if that account exists; else `nobody`.
    public static func resolve(user: String?, group: String?, environment: [String: String]) throws(Failure) -> RunAccount {
        var account: RunAccount
        if let user {
            guard let found = lookup(user) else { throw Failure(description: "user '\(user)' does not exist on this machine") }
            account = found
        } else if let uidText = environment["SUDO_UID"], let uid = UInt32(uidText), uid != 0 {
            let gid = environment["SUDO_GID"].flatMap { UInt32($0) } ?? uid
            account = RunAccount(uid: uid, gid: gid, name: lookup(uidText)?.name ?? environment["SUDO_USER"] ?? uidText)
        } else if let inetkit = lookup("inetkit") {
            account = inetkit
        } else if let nobody = lookup("nobody") {
            account = nobody
        } else {
            throw Failure(description: "neither 'inetkit' nor 'nobody' exists: set user: in the config")
        }
        if let group {
            guard let gid = lookupGroup(group) else { throw Failure(description: "group '\(group)' does not exist on this machine") }
            account.gid = gid
        }
        guard account.uid != 0 else { throw Failure(description: "user: must not be root (uid 0): workers never parse a protocol as root") }
        return account
    }

    /// A passwd entry by name or number.
    static func lookup(_ user: String) -> RunAccount? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16_384)
        if let uid = UInt32(user) {
            guard getpwuid_r(uid, &entry, &buffer, buffer.count, &result) == 0, let found = result else {
                return RunAccount(uid: uid, gid: uid, name: user)
            }
            return RunAccount(uid: found.pointee.pw_uid, gid: found.pointee.pw_gid, name: String(cString: found.pointee.pw_name))
        }
        guard getpwnam_r(user, &entry, &buffer, buffer.count, &result) == 0, let found = result else { return nil }
        return RunAccount(uid: found.pointee.pw_uid, gid: found.pointee.pw_gid, name: String(cString: found.pointee.pw_name))
    }

    static func lookupGroup(_ group: String) -> gid_t? {
        if let gid = UInt32(group) { return gid }
        var entry = Glibc.group()
        var result: UnsafeMutablePointer<Glibc.group>?
        var buffer = [CChar](repeating: 0, count: 16_384)
        guard getgrnam_r(group, &entry, &buffer, buffer.count, &result) == 0, let found = result else { return nil }
        return found.pointee.gr_gid
    }

    /// Becomes this account for good: supplementary groups cleared, then group, then user;
    /// checked by trying to get root back.
    public func drop() throws(Failure) {
        guard setgroups(0, nil) == 0 else { throw Failure(description: "setgroups: \(String(cString: strerror(errno)))") }
        guard setgid(gid) == 0 else { throw Failure(description: "setgid(\(gid)): \(String(cString: strerror(errno)))") }
        guard setuid(uid) == 0 else { throw Failure(description: "setuid(\(uid)): \(String(cString: strerror(errno)))") }
        guard setuid(0) != 0, geteuid() == uid, getegid() == gid else {
            throw Failure(description: "privileges could not be dropped for good")
        }
    }

    /// The first folder on the way to `path` this account may not enter (nil when it may).
    public func closedFolder(onTheWayTo path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        let full = String(cString: resolved)
        free(resolved)
        var prefix = ""
        for part in full.split(separator: "/").dropLast() {
            prefix += "/" + part
            var info = stat()
            guard stat(prefix, &info) == 0 else { continue }
            let mode = info.st_mode
            let enters = info.st_uid == uid ? mode & 0o100 != 0
                : info.st_gid == gid ? mode & 0o010 != 0 : mode & 0o001 != 0
            if !enters { return prefix }
        }
        return nil
    }

    /// Gives `path` and everything under it that root owns to this account (the supervisor,
    /// before the workers start), without following symbolic links.
    public func chownTree(_ path: String, depthLimit: Int = 16) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        if info.st_uid == 0 { _ = lchown(path, uid, gid) }
        guard (info.st_mode & S_IFMT) == S_IFDIR, depthLimit > 0, let dir = opendir(path) else { return }
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name == "." || name == ".." { continue }
            chownTree(path + "/" + name, depthLimit: depthLimit - 1)
        }
    }
}
