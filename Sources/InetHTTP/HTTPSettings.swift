import InetCore

/// The HTTP service's options (`services.http.*`).
public struct HTTPSettings: Sendable {
    /// `root`: the folder served (default `<data_dir>/public`).
    public var root: String
    /// `status_path`: where the host's own pages live (default `/_inetkit`).
    public var statusPath = "/_inetkit"
    /// `listing`: an HTML listing for folders without index.html (default true).
    public var listing = true
    /// `max_uri_bytes`: longer request targets get 414 (default 8 KiB).
    public var maxURIBytes = 8 * 1024
    /// `max_header_bytes`: larger request heads get 431 (default 32 KiB).
    public var maxHeaderBytes = 32 * 1024
    /// `max_body_bytes`: larger request bodies get 413 and the connection closes (default 1 MiB).
    public var maxBodyBytes = 1 << 20
    /// `header_timeout`: seconds a client has to send a whole request head, and that a
    /// kept-alive connection may wait for its next request (default 30).
    public var headerTimeout = 30.0
    /// `file_cache_bytes`: memory for small files kept ready to send (default 64 MiB, 0 = off).
    public var fileCacheBytes = 64 << 20
    /// `file_cache_max_file`: files larger than this always stream from disk (default 256 KiB).
    public var fileCacheMaxFile = 256 << 10

    static let keys: Set<String> = ["root", "status_path", "listing", "max_uri_bytes", "max_header_bytes", "max_body_bytes", "header_timeout", "file_cache_bytes", "file_cache_max_file"]

    /// The host's `data_dir` (where the dashboard token is kept).
    public var dataDirectory = "."

    init(options: ServiceOptions) throws(ConfigError) {
        root = try options.path("root", default: "public")
        dataDirectory = options.dataDirectory
        if let path = try options.string("status_path") {
            guard path.hasPrefix("/"), path.count > 1, !path.hasSuffix("/") else {
                throw options.error("status_path", "must start with / and not end with / (e.g. /_inetkit)")
            }
            statusPath = path
        }
        if let value = try options.reader?.bool("listing") { listing = value }
        if let value = try options.reader?.int("max_uri_bytes", range: 256...1_048_576) { maxURIBytes = value }
        if let value = try options.reader?.int("max_header_bytes", range: 1024...1_048_576) { maxHeaderBytes = value }
        if let value = try options.reader?.int("max_body_bytes", range: 0...(1 << 30)) { maxBodyBytes = value }
        if let value = try options.reader?.seconds("header_timeout", range: 0.1...3600) { headerTimeout = value }
        if let value = try options.reader?.int("file_cache_bytes", range: 0...(16 << 30)) { fileCacheBytes = value }
        if let value = try options.reader?.int("file_cache_max_file", range: 0...(1 << 30)) { fileCacheMaxFile = value }
    }
}
