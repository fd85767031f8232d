import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import InetCore
import InetTLS
import NIOCore
import NIOPosix

/// `<status_path>/api/v1/uploads…`: the files clients uploaded over FTP and TFTP, as their
/// `ftp.transfer` and `tftp.transfer` events in the ring record them (who, when, size,
/// SHA-256), and each file itself, only ever as a download (`Content-Disposition: attachment`,
/// `application/octet-stream`): a captured file is never shown or run by the browser.
///
/// A file is served only when it is a regular file inside a folder uploads land in (the host's
/// config says which: FTP users with `write: true`, TFTP's `upload_dir`) and its SHA-256 is
/// still the one its upload recorded; otherwise 404 or 409.
struct UploadsAPI: Sendable {
    let host: HostDirectory
    let prefix: String

    /// The newest events looked at for the list (a larger ring keeps more, but a list stays quick).
    static let maximumScanned = 100_000
    /// The most entries a list gives.
    static let maximumListed = 1000

    init(host: HostDirectory, statusPath: String) {
        self.host = host
        prefix = statusPath + "/api/v1/uploads"
    }

    func handles(_ path: String) -> Bool {
        path == prefix || path.hasPrefix(prefix + "/")
    }

    /// One upload, as its event records it.
    struct Upload: Sendable {
        var id: Int
        var time: String
        var service: String
        var peer: String
        var user: String?
        var file: String
        var bytes: Int
        var sha256: String?
        var path: String?

        init?(_ event: StoredEvent) {
            guard event.kind == "ftp.transfer" || event.kind == "tftp.transfer",
                  let object = try? JSONSerialization.jsonObject(with: Data(event.json)) as? [String: Any],
                  object["direction"] as? String == "upload", let file = object["file"] as? String
            else { return nil }
            id = event.id
            time = object["time"] as? String ?? ""
            service = event.service
            peer = object["peer"] as? String ?? ""
            user = object["user"] as? String
            self.file = file
            bytes = (object["bytes"] as? NSNumber)?.intValue ?? 0
            sha256 = object["sha256"] as? String
            path = object["path"] as? String
        }

        var name: String {
            let last = file.split(separator: "/").last.map(String.init) ?? "upload"
            let safe = String(last.unicodeScalars.prefix(100).map { CharacterSet.alphanumerics.contains($0) || $0 == "." || $0 == "-" || $0 == "_" ? Character($0) : "_" })
            return safe.isEmpty || safe.hasPrefix(".") ? "upload" + safe : safe
        }
    }

    func respond(_ request: Request) async -> Response {
        let rest = String(request.uri.path.dropFirst(prefix.count))
        let parts = rest.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map(String.init)
        guard let ring = host.events.readableRing else {
            return parts.isEmpty ? MailAPI.json("{\"uploads\":[],\"enabled\":false}\n") : MailAPI.error(.notFound, "events are off on this host")
        }
        switch parts.count {
        case 0:
            guard let limit = HostLive.number(request.uri.queryParameters["limit"], default: 100), (1...Self.maximumListed).contains(limit) else {
                return MailAPI.error(.badRequest, "limit must be 1 to 1000")
            }
            let folders = host.uploadFolders
            return await MailAPI.offLoop {
                let items = Self.list(ring, limit: limit).map { upload in
                    "{" + Self.members(upload) + ",\"available\":\(Self.locate(upload, folders: folders) != nil)}"
                }
                return MailAPI.json("{\"uploads\":[\(items.joined(separator: ",\n"))]}\n")
            }
        case 1:
            guard let id = HostLive.number(Substring(parts[0]), default: 0), id > 0 else { return MailAPI.error(.notFound, "no such upload") }
            return await download(id, ring: ring)
        default:
            return MailAPI.error(.notFound, "Not found.")
        }
    }

    static func members(_ upload: Upload) -> String {
        var text = "\"id\":\(upload.id),\"time\":\(JSON.quote(upload.time)),\"service\":\(JSON.quote(upload.service)),\"peer\":\(JSON.quote(upload.peer))"
        if let user = upload.user { text += ",\"user\":\(JSON.quote(user))" }
        text += ",\"file\":\(JSON.quote(upload.file)),\"name\":\(JSON.quote(upload.name)),\"bytes\":\(upload.bytes)"
        text += ",\"sha256\":" + (upload.sha256.map(JSON.quote) ?? "null")
        return text
    }

    /// The uploads among the newest events, newest first.
    static func list(_ ring: EventRing, limit: Int) -> [Upload] {
        var found: [Upload] = []
        var id = ring.lastID
        let oldest = max(ring.firstID, id - maximumScanned + 1)
        while id >= oldest, found.count < limit {
            if case .event(let event) = ring.read(id), let upload = Upload(event) { found.append(upload) }
            id -= 1
        }
        return found
    }

    /// The file an upload stored, if it is still there as it was: a regular file (no symlink)
    /// inside one of the upload folders, of the size the upload recorded.
    static func locate(_ upload: Upload, folders: [String]) -> String? {
        var link = stat()
        guard let path = upload.path, path.hasPrefix("/"), lstat(path, &link) == 0, (link.st_mode & S_IFMT) == S_IFREG,
              let real = SitePath.realPath(path) else { return nil }
        let inside = folders.contains { folder in
            guard let base = SitePath.realPath(folder) else { return false }
            return real.hasPrefix(base.hasSuffix("/") ? base : base + "/")
        }
        var info = stat()
        guard inside, lstat(real, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, Int(info.st_size) == upload.bytes else { return nil }
        return real
    }

    enum Located: Sendable {
        case found(String), gone, changed
    }

    private func download(_ id: Int, ring: EventRing) async -> Response {
        guard case .event(let event) = ring.read(id), let upload = Upload(event) else {
            return MailAPI.error(.notFound, "no upload \(id) among the events the host keeps")
        }
        let folders = host.uploadFolders
        let checked = try? await NIOThreadPool.singleton.runIfActive { () -> Located in
            guard let path = Self.locate(upload, folders: folders) else { return .gone }
            // The file must be the one uploaded: a later upload or edit in its place is not it.
            if let recorded = upload.sha256, SHA256Digest.file(path, limit: Int.max) != recorded { return .changed }
            return .found(path)
        }
        switch checked {
        case .found(let path):
            return MailAPI.download(path: path, size: upload.bytes, type: "application/octet-stream", name: upload.name)
        case .changed:
            return MailAPI.error(.conflict, "the file changed since it was uploaded (its SHA-256 is no longer the upload's)")
        case .gone:
            return MailAPI.error(.notFound, "the uploaded file is no longer there")
        case nil:
            return MailAPI.error(.serviceUnavailable, "the server is stopping")
        }
    }
}
