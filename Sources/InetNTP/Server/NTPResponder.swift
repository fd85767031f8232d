import InetCore
import NIOCore

/// The server's rules (RFC 5905 §9, RFC 4330 §5), without sockets or clocks: which requests get
/// an answer and what the answer says. `NTPService` feeds it the datagram, the times and the
/// kernel's clock state.
public struct NTPResponder: Sendable, Equatable {
    /// Whether the server says its clock is synchronised.
    public enum Synchronization: String, Sendable {
        /// As the kernel says (adjtimex): unsynchronised (leap 3, stratum 16) when no NTP daemon keeps it.
        case auto
        /// Always synchronised (a lab or sandbox whose clients must accept the time).
        case always
        /// Never: every answer says leap 3.
        case never
    }

    public var stratum: UInt8
    public var referenceID: UInt32
    public var synchronization: Synchronization
    /// log2 of the precision claimed, in seconds (-20: about a microsecond).
    public var precision: Int8

    public init(stratum: UInt8 = 1, referenceID: UInt32 = NTPPacket.referenceID(code: "LOCL") ?? 0, synchronization: Synchronization = .auto, precision: Int8 = -20) {
        self.stratum = stratum
        self.referenceID = referenceID
        self.synchronization = synchronization
        self.precision = precision
    }

    /// Why a datagram gets no answer.
    public enum Refusal: Error, Equatable, CustomStringConvertible {
        case short(Int)
        /// Modes 6 and 7 (ntpq's control messages, ntpdc's `monlist`) are never answered: they
        /// are what made NTP servers amplifiers.
        case controlMode(UInt8)
        case notAClient(UInt8)
        case version(UInt8)

        public var description: String {
            switch self {
            case .short(let count): "\(count) bytes, shorter than an NTP header"
            case .controlMode(let mode): "mode \(mode) (control/private) is never answered"
            case .notAClient(let mode): "mode \(mode) is not a client request"
            case .version(let version): "version \(version) is not supported"
            }
        }
    }

    /// The request in a datagram, if it is one this server answers.
    public static func request<Bytes: Collection<UInt8>>(in bytes: Bytes) -> Result<NTPPacket, Refusal> {
        guard let packet = NTPPacket.decode(bytes) else { return .failure(.short(bytes.count)) }
        return check(packet)
    }

    /// The same checks on a datagram buffer, read in place.
    public static func request(in buffer: ByteBuffer) -> Result<NTPPacket, Refusal> {
        guard let packet = NTPPacket.decode(buffer) else { return .failure(.short(buffer.readableBytes)) }
        return check(packet)
    }

    static func check(_ packet: NTPPacket) -> Result<NTPPacket, Refusal> {
        switch packet.mode {
        case .control, .privateUse: return .failure(.controlMode(packet.mode.rawValue))
        case .client: break
        default: return .failure(.notAClient(packet.mode.rawValue))
        }
        guard (1...4).contains(packet.version) else { return .failure(.version(packet.version)) }
        return .success(packet)
    }

    /// The answer to an admissible request: the client's version and poll, its transmit time as
    /// the origin, the given receive and transmit times. `kiss`: a Kiss-o'-Death RATE instead
    /// (stratum 0, leap 3), telling the client to slow down.
    public func answer(to request: NTPPacket, received: NTPTimestamp, transmitted: NTPTimestamp, clock: HostClock.KernelState, kiss: Bool = false) -> NTPPacket {
        let synchronized = synchronization == .always || (synchronization == .auto && clock.synchronized)
        var leap: NTPPacket.Leap = .unsynchronized
        if synchronized {
            switch clock.leap {
            case .none: leap = .none
            case .insert: leap = .insertSecond
            case .delete: leap = .deleteSecond
            }
        }
        // What the kernel estimates when it keeps the clock; a clock the config vouches for
        // claims a millisecond.
        let dispersion = clock.synchronized ? min(max(clock.estimatedError, 0.000_001), 16) : (synchronized ? 0.001 : 16)
        var reply = NTPPacket(
            leap: leap, version: request.version, mode: .server, stratum: synchronized ? stratum : 16,
            poll: request.poll, precision: precision, rootDelay: 0, rootDispersion: NTPShortFormat.encode(dispersion),
            referenceID: synchronized ? referenceID : 0,
            referenceTime: synchronized ? NTPTimestamp(seconds: received.seconds & ~63, fraction: 0) : .zero,
            originTime: request.transmitTime, receiveTime: received, transmitTime: transmitted)
        if kiss {
            reply.leap = .unsynchronized
            reply.stratum = 0
            reply.referenceID = NTPPacket.referenceID(code: "RATE") ?? 0
        }
        return reply
    }
}
