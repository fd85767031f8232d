import Logging
import NIOCore

/// A protocol module implements this once; the host binds it on each of its transports.
///
/// TCP: the host accepts a connection, installs its own accounting and idle-timeout handlers,
/// then asks the service to add its handlers. UDP: the host reads each datagram, applies the
/// per-source rate limit, and asks the service for the reply.
public protocol InetService: Sendable {
    /// Adds the service's handlers to a freshly accepted TCP connection.
    /// Called on the channel's event loop; use `channel.pipeline.syncOperations`.
    func configureTCPConnection(_ channel: any Channel) throws

    /// The reply to one UDP datagram, or `nil` when the service sends none.
    func reply(toDatagram payload: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer?

    /// The same, for services whose answer depends on who asks (SNMP communities restricted to
    /// addresses). By default the source is ignored.
    func reply(toDatagram payload: ByteBuffer, from source: SocketAddress, allocator: ByteBufferAllocator) -> ByteBuffer?

    /// The same, for a service that answers from elsewhere too (TFTP runs each transfer on a
    /// socket of its own): it is given the listening socket's channel (its loop and local
    /// address). By default `reply(toDatagram:from:allocator:)`.
    func reply(toDatagram payload: ByteBuffer, from source: SocketAddress, channel: any Channel) -> ByteBuffer?

    /// The kind of the event each datagram exchange emits (`datagram`; DNS: `dns.query`), or
    /// nil for a service that emits its own events (syslog, once it has parsed the message).
    var datagramEventKind: String? { get }

    /// Whether that event carries a bounded hex view of the datagram and its answer (binary
    /// protocols; DNS and SNMP describe theirs in full and need none).
    var datagramEventHex: Bool { get }

    /// The same, describing the exchange in its `datagram` event (DNS: the question, rcode and
    /// where the answer came from; SNMP: the PDU and its OIDs). By default nothing is added.
    func reply(toDatagram payload: ByteBuffer, from source: SocketAddress, channel: any Channel, event: inout EventBody) -> ByteBuffer?

    /// The same without a channel, for a service that `servesDatagramsDirectly`. By default
    /// `reply(toDatagram:from:allocator:)`.
    func reply(toDatagram payload: ByteBuffer, from source: SocketAddress, allocator: ByteBufferAllocator, event: inout EventBody) -> ByteBuffer?

    /// Whether the service answers each datagram from the datagram alone (no channel: DNS,
    /// SNMP, NTP): its UDP sockets are then read and written on a thread of their own with
    /// recvmmsg and sendmmsg, without SwiftNIO's channel pipeline (a quarter of a DNS query's CPU).
    /// False by default.
    var servesDatagramsDirectly: Bool { get }

    /// The answer to a datagram the per-source rate limit refused (`first`: the first refused
    /// after a run of admitted ones), e.g. NTP's Kiss-o'-Death RATE; by default nothing is sent.
    /// It must be no larger than the datagram, and the service bounds how many it sends.
    func replyWhenRateLimited(toDatagram payload: ByteBuffer, from source: SocketAddress, first: Bool, allocator: ByteBufferAllocator) -> ByteBuffer?

    /// Called before the service's listeners are bound (e.g. to create its folders). An error
    /// stops the start, or the enabling on reload, like a port that cannot be bound.
    func prepare() throws

    /// Called at shutdown once the listeners are closed, before the host waits for open
    /// connections: a service whose clients keep connections open for good (syslog senders)
    /// ends them itself once they have gone quiet. By default nothing.
    func drainConnections()

    /// Called last at shutdown, once every connection is closed: write out what is buffered.
    func finish() async
}

extension InetService {
    public func configureTCPConnection(_ channel: any Channel) throws {
        throw ChannelError.operationUnsupported
    }

    public func reply(toDatagram payload: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer? {
        nil
    }

    public func reply(toDatagram payload: ByteBuffer, from source: SocketAddress, allocator: ByteBufferAllocator) -> ByteBuffer? {
        reply(toDatagram: payload, allocator: allocator)
    }

    public func replyWhenRateLimited(toDatagram payload: ByteBuffer, from source: SocketAddress, first: Bool, allocator: ByteBufferAllocator) -> ByteBuffer? {
        nil
    }

    public func reply(toDatagram payload: ByteBuffer, from source: SocketAddress, channel: any Channel) -> ByteBuffer? {
        reply(toDatagram: payload, from: source, allocator: channel.allocator)
    }

    public func reply(toDatagram payload: ByteBuffer, from source: SocketAddress, channel: any Channel, event: inout EventBody) -> ByteBuffer? {
        reply(toDatagram: payload, from: source, channel: channel)
    }

    public func reply(toDatagram payload: ByteBuffer, from source: SocketAddress, allocator: ByteBufferAllocator, event: inout EventBody) -> ByteBuffer? {
        reply(toDatagram: payload, from: source, allocator: allocator)
    }

    public var servesDatagramsDirectly: Bool { false }

    public var datagramEventKind: String? { "datagram" }

    public var datagramEventHex: Bool { true }

    public func prepare() throws {}

    public func drainConnections() {}

    public func finish() async {}
}

/// A service whose connections each run as an async task (e.g. HTTP on Hummingbird), instead
/// of handlers that answer on the event loop. The host still accepts, limits, times out,
/// counts and logs each connection exactly as for any other service.
public protocol InetConnectionTaskService: InetService {
    /// Adds the service's handlers (on the channel's event loop) and returns the work to run
    /// for the connection; the host runs it in a task of its own.
    func setupConnection(_ channel: any Channel, logger: Logger) -> EventLoopFuture<ConnectionTask>
}

/// The async work of one connection of an `InetConnectionTaskService`.
public struct ConnectionTask: Sendable {
    public let run: @Sendable () async -> Void

    public init(run: @escaping @Sendable () async -> Void) {
        self.run = run
    }

    /// For a connection the host refused: nothing to do.
    public static let none = ConnectionTask {}
}

/// What the host needs to know about a service before it creates one.
public struct ServiceDescriptor: Sendable {
    /// The service name, as used in config keys, the ports file and logs.
    public var name: String
    /// The port of the service's RFC (before any offset).
    public var wellKnownPort: Int
    /// The transports the service speaks.
    public var transports: [Transport]
    /// Keys the service accepts under `services.<name>` besides the host's common keys.
    public var optionKeys: Set<String>
    /// One line for `--help` and the README.
    public var summary: String
    /// Whether the service runs when the config does not say `enabled:`; e.g. HTTPS only
    /// once `cert` and `key` are given.
    public var enabledByDefault: @Sendable (ConfigReader?) -> Bool
    /// The service's own `udp_rate`/`udp_burst` defaults, when the host's (50/s, 100) do not
    /// suit it (an SNMP walk sends one request per variable). `limits:` in the file and the
    /// service's own keys still win.
    public var defaultUDPRate: (rate: Double, burst: Double)?
    /// The service's own `idle_timeout` default, when the host's (300 s) does not suit it
    /// (syslog senders keep a connection open and idle for hours).
    public var defaultIdleTimeout: Double?
    /// The service's own `udp_receive_buffer` default (syslog: senders burst and are never asked
    /// to slow down).
    public var defaultUDPReceiveBuffer: Int?
    /// Whether the datagrams of one source must stay in order (syslog's messages; TFTP's
    /// retransmitted requests must reach the socket that saw the first): its UDP sockets are
    /// then chosen by the kernel's hash of the source. Otherwise by the CPU receiving the
    /// datagram, so that every event loop works whatever the number of sources.
    public var udpKeepsSourceOrder: Bool
    /// Another service whose options this one takes for the keys its own map does not give
    /// (SMTPS those of SMTP): the same sessions on another port.
    public var inheritsOptionsOf: String?
    /// Creates the service from its options; errors name the key.
    public var make: @Sendable (ServiceOptions) throws(ConfigError) -> any InetService
    /// The folders clients may upload into (FTP users' homes, TFTP's `upload_dir`): worked out
    /// from the options by every process, so the HTTP worker knows which files the dashboard
    /// may offer as uploads without the service itself running there.
    public var uploadFolders: (@Sendable (ServiceOptions) throws(ConfigError) -> [String])?

    public init(
        name: String,
        wellKnownPort: Int,
        transports: [Transport],
        optionKeys: Set<String> = [],
        summary: String,
        enabledByDefault: @escaping @Sendable (ConfigReader?) -> Bool = { _ in true },
        defaultUDPRate: (rate: Double, burst: Double)? = nil,
        defaultIdleTimeout: Double? = nil,
        defaultUDPReceiveBuffer: Int? = nil,
        inheritsOptionsOf: String? = nil,
        udpKeepsSourceOrder: Bool = false,
        make: @escaping @Sendable (ServiceOptions) throws(ConfigError) -> any InetService
    ) {
        self.name = name
        self.wellKnownPort = wellKnownPort
        self.transports = transports
        self.optionKeys = optionKeys
        self.summary = summary
        self.enabledByDefault = enabledByDefault
        self.defaultUDPRate = defaultUDPRate
        self.defaultIdleTimeout = defaultIdleTimeout
        self.defaultUDPReceiveBuffer = defaultUDPReceiveBuffer
        self.inheritsOptionsOf = inheritsOptionsOf
        self.udpKeepsSourceOrder = udpKeepsSourceOrder
        self.make = make
        uploadFolders = nil
    }
}

/// The service-specific part of `services.<name>` in the config, and where the host keeps data.
public struct ServiceOptions: Sendable {
    /// The service's map in the config (`nil` when the config does not mention the service).
    public var reader: ConfigReader?
    /// The host's data folder (`data_dir`).
    public var dataDirectory: String
    /// The folder of the config file, against which relative paths are resolved.
    public var configDirectory: String
    /// The running host's services and counters (for status pages and the SNMP agent).
    public var host: HostDirectory
    /// The host's clock (`clock_offset` applied), for the services that tell the time.
    public var clock: HostClock

    public init(reader: ConfigReader?, dataDirectory: String, configDirectory: String, host: HostDirectory = HostDirectory(), clock: HostClock = HostClock()) {
        self.clock = clock
        self.reader = reader
        self.dataDirectory = dataDirectory
        self.configDirectory = configDirectory
        self.host = host
    }

    /// A path option resolved like `path(_:)`, or `default` under the data folder.
    public func path(_ key: String, default relative: String) throws(ConfigError) -> String {
        if let value = try path(key) { return value }
        if dataDirectory.hasSuffix("/") { return dataDirectory + relative }
        return "\(dataDirectory)/\(relative)"
    }

    public func string(_ key: String) throws(ConfigError) -> String? {
        try reader?.string(key)
    }

    /// A path option, resolved against the config file's folder when relative.
    public func path(_ key: String) throws(ConfigError) -> String? {
        guard let value = try string(key) else { return nil }
        if value.hasPrefix("/") || configDirectory.isEmpty { return value }
        return configDirectory + "/" + value
    }

    public func error(_ key: String, _ message: String) -> ConfigError {
        reader?.error(key, message) ?? ConfigError(file: "<defaults>", key: key, line: nil, message: message)
    }
}
