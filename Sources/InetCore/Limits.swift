/// The limits the host enforces for one service. Each has a config key under `limits:`
/// (the default for every service) and under `services.<name>:` (that service only).
public struct Limits: Sendable, Equatable {
    /// `max_connections`: TCP connections open at once; one more is accepted and closed at once.
    public var maxConnections: Int = 1024
    /// `idle_timeout`: seconds a TCP connection may go without reading or writing anything.
    public var idleTimeout: Double = 300
    /// `udp_rate`: datagrams per second answered per source address (0 = no limit).
    public var udpRate: Double = 50
    /// `udp_burst`: datagrams a source may send at once before `udp_rate` applies.
    public var udpBurst: Double = 100
    /// `udp_max_sources`: source addresses the rate limiter tracks at once.
    public var udpMaxSources: Int = 65_536
    /// `max_datagram`: the largest UDP datagram read whole (bytes); larger ones are truncated by the kernel.
    public var maxDatagram: Int = 65_536
    /// `max_pending_output`: bytes a TCP connection may have written but not yet taken by its
    /// peer before the service stops answering and stops reading it (the channel's write
    /// buffer high-water mark; reading resumes below half of it).
    public var maxPendingOutput: Int = 256 * 1024
    /// `udp_receive_buffer`: bytes of datagrams the kernel may hold for a UDP socket before it
    /// drops (SO_RCVBUF; 0 = the system's default). Set with SO_RCVBUFFORCE where the process
    /// may (the supervisor, as root), else capped by net.core.rmem_max.
    public var udpReceiveBuffer: Int = 0

    public init() {}

    static let keys: Set<String> = ["max_connections", "idle_timeout", "udp_rate", "udp_burst", "udp_max_sources", "max_datagram", "max_pending_output", "udp_receive_buffer"]

    /// Applies whatever limit keys `reader` holds on top of `self`.
    func overridden(by reader: ConfigReader) throws(ConfigError) -> Limits {
        var limits = self
        if let value = try reader.int("max_connections", range: 1...1_000_000) { limits.maxConnections = value }
        if let value = try reader.seconds("idle_timeout", range: 0.01...86_400 * 7) { limits.idleTimeout = value }
        if let value = try reader.seconds("udp_rate", range: 0...10_000_000) { limits.udpRate = value }
        if let value = try reader.seconds("udp_burst", range: 1...10_000_000) { limits.udpBurst = value }
        if let value = try reader.int("udp_max_sources", range: 16...10_000_000) { limits.udpMaxSources = value }
        if let value = try reader.int("max_datagram", range: 512...65_536) { limits.maxDatagram = value }
        if let value = try reader.int("max_pending_output", range: 4096...(64 << 20)) { limits.maxPendingOutput = value }
        if let value = try reader.int("udp_receive_buffer", range: 0...(1 << 30)) { limits.udpReceiveBuffer = value }
        return limits
    }
}
