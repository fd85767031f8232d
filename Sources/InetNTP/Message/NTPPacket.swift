/// The 48-byte NTP header (RFC 5905 §7.3), shared by the server, the client and the fuzz
/// target. Extension fields and a MAC may follow it on the wire; the codec reads the header and
/// leaves them (InetKit answers unauthenticated, as an SNTP server does).
public struct NTPPacket: Equatable, Sendable {
    public enum Mode: UInt8, Sendable {
        case reserved = 0, symmetricActive, symmetricPassive, client, server, broadcast, control, privateUse
    }

    public enum Leap: UInt8, Sendable {
        case none = 0, insertSecond, deleteSecond, unsynchronized
    }

    public static let headerSize = 48

    public var leap: Leap
    /// The version number, 0...7 on the wire (1...4 are defined).
    public var version: UInt8
    public var mode: Mode
    /// 0 is a Kiss-o'-Death, 1 a primary server, 2...15 secondary, 16 unsynchronised.
    public var stratum: UInt8
    /// log2 of the poll interval in seconds.
    public var poll: Int8
    /// log2 of the clock's precision in seconds.
    public var precision: Int8
    public var rootDelay: UInt32
    public var rootDispersion: UInt32
    /// Four ASCII characters for stratum 0 (the kiss code) and 1 (the reference clock), else an
    /// IPv4 address (or a hash of an IPv6 one).
    public var referenceID: UInt32
    public var referenceTime: NTPTimestamp
    public var originTime: NTPTimestamp
    public var receiveTime: NTPTimestamp
    public var transmitTime: NTPTimestamp

    public init(leap: Leap = .none, version: UInt8 = 4, mode: Mode, stratum: UInt8 = 0, poll: Int8 = 0, precision: Int8 = 0,
                rootDelay: UInt32 = 0, rootDispersion: UInt32 = 0, referenceID: UInt32 = 0,
                referenceTime: NTPTimestamp = .zero, originTime: NTPTimestamp = .zero,
                receiveTime: NTPTimestamp = .zero, transmitTime: NTPTimestamp = .zero) {
        self.leap = leap
        self.version = version
        self.mode = mode
        self.stratum = stratum
        self.poll = poll
        self.precision = precision
        self.rootDelay = rootDelay
        self.rootDispersion = rootDispersion
        self.referenceID = referenceID
        self.referenceTime = referenceTime
        self.originTime = originTime
        self.receiveTime = receiveTime
        self.transmitTime = transmitTime
    }

    /// Reads the header from the first 48 bytes; nil when there are fewer.
    public static func decode<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> NTPPacket? {
        guard bytes.count >= headerSize else { return nil }
        var header = [UInt8](repeating: 0, count: headerSize)
        var index = bytes.startIndex
        for offset in 0..<headerSize {
            header[offset] = bytes[index]
            index = bytes.index(after: index)
        }
        func word(_ at: Int) -> UInt32 {
            UInt32(header[at]) << 24 | UInt32(header[at + 1]) << 16 | UInt32(header[at + 2]) << 8 | UInt32(header[at + 3])
        }
        func stamp(_ at: Int) -> NTPTimestamp { NTPTimestamp(seconds: word(at), fraction: word(at + 4)) }
        // Every 2- and 3-bit value is a case of the enums: these cannot fail.
        return NTPPacket(
            leap: Leap(rawValue: header[0] >> 6) ?? .unsynchronized, version: (header[0] >> 3) & 0x7,
            mode: Mode(rawValue: header[0] & 0x7) ?? .reserved, stratum: header[1],
            poll: Int8(bitPattern: header[2]), precision: Int8(bitPattern: header[3]),
            rootDelay: word(4), rootDispersion: word(8), referenceID: word(12),
            referenceTime: stamp(16), originTime: stamp(24), receiveTime: stamp(32), transmitTime: stamp(40))
    }

    /// The 48 header bytes.
    public func encode() -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Self.headerSize)
        bytes.append(leap.rawValue << 6 | (version & 0x7) << 3 | mode.rawValue)
        bytes.append(stratum)
        bytes.append(UInt8(bitPattern: poll))
        bytes.append(UInt8(bitPattern: precision))
        func word(_ value: UInt32) {
            bytes.append(UInt8(truncatingIfNeeded: value >> 24))
            bytes.append(UInt8(truncatingIfNeeded: value >> 16))
            bytes.append(UInt8(truncatingIfNeeded: value >> 8))
            bytes.append(UInt8(truncatingIfNeeded: value))
        }
        word(rootDelay)
        word(rootDispersion)
        word(referenceID)
        for stamp in [referenceTime, originTime, receiveTime, transmitTime] {
            word(stamp.seconds)
            word(stamp.fraction)
        }
        return bytes
    }

    /// A reference id from four ASCII characters (shorter ones padded with NUL), e.g. `LOCL`, `RATE`.
    public static func referenceID(code: String) -> UInt32? {
        let bytes = Array(code.utf8)
        guard (1...4).contains(bytes.count), bytes.allSatisfy({ $0 >= 0x20 && $0 < 0x7f }) else { return nil }
        return (bytes + [UInt8](repeating: 0, count: 4 - bytes.count)).reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// The reference id as people read it: the kiss or clock code for stratum 0 and 1, the
    /// dotted address otherwise.
    public var referenceText: String {
        let bytes = [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: referenceID >> $0) }
        if stratum <= 1 {
            let printable = bytes.prefix { $0 != 0 }
            if printable.allSatisfy({ $0 >= 0x20 && $0 < 0x7f }) { return String(decoding: printable, as: UTF8.self) }
        }
        return bytes.map(String.init).joined(separator: ".")
    }
}

import NIOCore

extension NTPPacket {
    /// The header read straight from a datagram's bytes (no copy); nil when shorter than 48.
    public static func decode(_ buffer: ByteBuffer) -> NTPPacket? {
        guard buffer.readableBytes >= headerSize else { return nil }
        let at = buffer.readerIndex
        guard let first = buffer.getInteger(at: at, as: UInt8.self), let stratum = buffer.getInteger(at: at + 1, as: UInt8.self),
              let poll = buffer.getInteger(at: at + 2, as: Int8.self), let precision = buffer.getInteger(at: at + 3, as: Int8.self),
              let rootDelay = buffer.getInteger(at: at + 4, as: UInt32.self), let rootDispersion = buffer.getInteger(at: at + 8, as: UInt32.self),
              let referenceID = buffer.getInteger(at: at + 12, as: UInt32.self), let reference = buffer.getInteger(at: at + 16, as: UInt64.self),
              let origin = buffer.getInteger(at: at + 24, as: UInt64.self), let receive = buffer.getInteger(at: at + 32, as: UInt64.self),
              let transmit = buffer.getInteger(at: at + 40, as: UInt64.self) else { return nil }
        return NTPPacket(
            leap: Leap(rawValue: first >> 6) ?? .unsynchronized, version: (first >> 3) & 0x7, mode: Mode(rawValue: first & 0x7) ?? .reserved,
            stratum: stratum, poll: poll, precision: precision, rootDelay: rootDelay, rootDispersion: rootDispersion, referenceID: referenceID,
            referenceTime: NTPTimestamp(raw: reference), originTime: NTPTimestamp(raw: origin),
            receiveTime: NTPTimestamp(raw: receive), transmitTime: NTPTimestamp(raw: transmit))
    }

    /// Writes the 48 header bytes.
    public func write(into buffer: inout ByteBuffer) {
        buffer.writeInteger(leap.rawValue << 6 | (version & 0x7) << 3 | mode.rawValue)
        buffer.writeInteger(stratum)
        buffer.writeInteger(poll)
        buffer.writeInteger(precision)
        buffer.writeInteger(rootDelay)
        buffer.writeInteger(rootDispersion)
        buffer.writeInteger(referenceID)
        buffer.writeInteger(referenceTime.raw)
        buffer.writeInteger(originTime.raw)
        buffer.writeInteger(receiveTime.raw)
        buffer.writeInteger(transmitTime.raw)
    }
}
