import InetCore
import NIOConcurrencyHelpers
import NIOCore

/// NTP (RFC 5905) as an SNTP server (RFC 4330) on UDP 123: each client-mode request gets one
/// server-mode reply of 48 bytes (never larger than the request) with the host's time, the
/// host's `clock_offset` applied. Control and private modes (ntpq, ntpdc `monlist`) are never
/// answered; a source over the rate limit gets a Kiss-o'-Death RATE (bounded by `kiss_rate`).
public struct NTPService: InetService {
    public static let keys: Set<String> = ["stratum", "reference_id", "synchronized", "kiss_rate"]

    public static let descriptor = ServiceDescriptor(
        name: "ntp", wellKnownPort: 123, transports: [.udp], optionKeys: keys,
        summary: "tells the time to NTP and SNTP clients (RFC 5905, RFC 4330)",
        // NTP clients ask once every 64 s or more (a burst of 4 to 8 at start): a strict limit
        // costs them nothing and bounds what a forged source can reflect.
        defaultUDPRate: (rate: 10, burst: 20)
    ) { options throws(ConfigError) in try NTPService(options) }

    public let responder: NTPResponder
    let clock: HostClock
    let kernelState: @Sendable () -> HostClock.KernelState
    let kisses: KissBudget
    let clockState = ClockStateCache()

    public init(responder: NTPResponder = NTPResponder(), clock: HostClock = HostClock(), kissRate: Double = 100,
                kernelState: @escaping @Sendable () -> HostClock.KernelState = { HostClock.kernelState() }) {
        self.responder = responder
        self.clock = clock
        self.kernelState = kernelState
        self.kisses = KissBudget(rate: kissRate)
    }

    init(_ options: ServiceOptions) throws(ConfigError) {
        var responder = NTPResponder()
        if let stratum = try options.reader?.int("stratum", range: 1...15) { responder.stratum = UInt8(stratum) }
        if let text = try options.string("reference_id") {
            guard let id = Self.referenceID(text, stratum: responder.stratum) else {
                throw options.error("reference_id", responder.stratum == 1
                    ? "stratum 1 takes 1 to 4 ASCII characters (e.g. LOCL, GPS, PPS)"
                    : "stratum \(responder.stratum) takes the IPv4 address of the server it follows (e.g. 192.0.2.1)")
            }
            responder.referenceID = id
        } else if responder.stratum > 1 {
            responder.referenceID = 0x7f7f_0101  // 127.127.1.1, the local clock, as ntpd and chrony's `local` use
        }
        if let text = try options.string("synchronized") {
            switch text.lowercased() {
            case "auto": responder.synchronization = .auto
            case "true", "yes", "always": responder.synchronization = .always
            case "false", "no", "never": responder.synchronization = .never
            default: throw options.error("synchronized", "expected auto (as the kernel says), true or false")
            }
        }
        let kissRate = try options.reader?.int("kiss_rate", range: 0...1_000_000) ?? 100
        self.init(responder: responder, clock: options.clock, kissRate: Double(kissRate))
    }

    /// A reference id from the config: ASCII for stratum 1, an IPv4 address otherwise.
    static func referenceID(_ text: String, stratum: UInt8) -> UInt32? {
        if stratum == 1 { return NTPPacket.referenceID(code: text) }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var id: UInt32 = 0
        for part in parts {
            guard part.count <= 3, let octet = UInt8(part) else { return nil }
            id = id << 8 | UInt32(octet)
        }
        return id
    }

    func timestamp() -> NTPTimestamp {
        let now = clock.now()
        return NTPTimestamp(unixSeconds: now.seconds, nanoseconds: now.nanoseconds)
    }

    public func reply(toDatagram payload: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer? {
        answer(payload, kiss: false, allocator: allocator)
    }

    public func replyWhenRateLimited(toDatagram payload: ByteBuffer, from source: SocketAddress, first: Bool, allocator: ByteBufferAllocator) -> ByteBuffer? {
        guard kisses.take() else { return nil }
        return answer(payload, kiss: true, allocator: allocator)
    }

    public var datagramEventKind: String? { "ntp.request" }

    public var servesDatagramsDirectly: Bool { true }

    public func reply(toDatagram payload: ByteBuffer, from source: SocketAddress, channel: any Channel, event: inout EventBody) -> ByteBuffer? {
        reply(toDatagram: payload, from: source, allocator: channel.allocator, event: &event)
    }

    /// The reply, described in the exchange's `ntp.request` event: the request's version and
    /// mode, and the answer's stratum, leap indicator and reference, or why none was sent.
    public func reply(toDatagram payload: ByteBuffer, from source: SocketAddress, allocator: ByteBufferAllocator, event: inout EventBody) -> ByteBuffer? {
        if let first = payload.getInteger(at: payload.readerIndex, as: UInt8.self) {
            event.int("version", Int(first >> 3 & 7))
            event.string("mode", Self.modeNames[Int(first & 7)])
        }
        switch described(payload, kiss: false, allocator: allocator) {
        case .failure(let refusal):
            event.string("refused", refusal.description)
            return nil
        case .success(let (reply, buffer)):
            event.int("stratum", Int(reply.stratum))
            event.string("leap", Self.leapNames[Int(reply.leap.rawValue)])
            event.string("reference", reply.referenceText)
            return buffer
        }
    }

    static let modeNames = ["reserved", "symmetric active", "symmetric passive", "client", "server", "broadcast", "control", "private"]
    static let leapNames = ["none", "insert second", "delete second", "unsynchronized"]

    private func answer(_ payload: ByteBuffer, kiss: Bool, allocator: ByteBufferAllocator) -> ByteBuffer? {
        try? described(payload, kiss: kiss, allocator: allocator).get().1
    }

    private func described(_ payload: ByteBuffer, kiss: Bool, allocator: ByteBufferAllocator) -> Result<(NTPPacket, ByteBuffer), NTPResponder.Refusal> {
        let received = timestamp()
        let request: NTPPacket
        switch NTPResponder.request(in: payload) {
        case .success(let value): request = value
        case .failure(let refusal): return .failure(refusal)
        }
        let reply = responder.answer(to: request, received: received, transmitted: timestamp(), clock: clockState.current(kernelState), kiss: kiss)
        var buffer = allocator.buffer(capacity: NTPPacket.headerSize)
        reply.write(into: &buffer)
        return .success((reply, buffer))
    }
}

/// The kernel's clock state, read again at most once a second (an adjtimex call per request
/// would be a system call per datagram for a value that changes every few minutes at most).
final class ClockStateCache: Sendable {
    private let cached = NIOLockedValueBox<(state: HostClock.KernelState, read: NIODeadline)?>(nil)

    func current(_ read: () -> HostClock.KernelState) -> HostClock.KernelState {
        let now = NIODeadline.now()
        if let hit = cached.withLockedValue({ $0 }), now - hit.read < .seconds(1) { return hit.state }
        let state = read()
        cached.withLockedValue { $0 = (state, now) }
        return state
    }
}

/// How many Kiss-o'-Death replies the service may still send: a token bucket shared by its
/// sockets, so a flood from forged sources cannot turn the kisses into a reflector.
final class KissBudget: Sendable {
    private let state: NIOLockedValueBox<(tokens: Double, updated: NIODeadline)>
    let rate: Double

    init(rate: Double) {
        self.rate = rate
        state = NIOLockedValueBox((rate, .now()))
    }

    func take() -> Bool {
        guard rate > 0 else { return false }
        let now = NIODeadline.now()
        return state.withLockedValue { budget in
            let elapsed = Double((now - budget.updated).nanoseconds) / 1e9
            budget.tokens = min(rate, budget.tokens + max(0, elapsed) * rate)
            budget.updated = now
            guard budget.tokens >= 1 else { return false }
            budget.tokens -= 1
            return true
        }
    }
}
