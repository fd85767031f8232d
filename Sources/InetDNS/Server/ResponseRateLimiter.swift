import InetCore
import NIOConcurrencyHelpers
import NIOCore

/// Response-rate limiting (RRL) in the sense of NSD and BIND: over UDP, a source prefix may
/// receive at most `rate` identical responses a second, where identical means the same class
/// of answer for the same name: positive answers and NODATA by query name and type, NXDOMAIN by
/// the zone that denies the name (so random names do not evade it), referrals by the
/// delegation, errors all alike. What goes over is dropped, but every `slip`-th dropped
/// response is replaced by an empty truncated one (TC, no larger than the query), so a real
/// client behind a forged flood still gets told to retry over TCP, which is never limited.
/// This stops the host from being a reflector without cutting off a resolver or a benchmark
/// that asks for many different names.
public final class ResponseRateLimiter: Sendable {
    public struct Settings: Sendable, Equatable {
        /// `rrl_rate`: identical responses per second per prefix (NSD's rrl-ratelimit: 200).
        public var rate = 200.0
        /// `rrl_nxdomain_rate`: NXDOMAIN responses per second per prefix and zone. NSD counts
        /// them against the same 200, so a benchmark's or a crawler's misses are cut off; the
        /// answer is no larger than about three times the query, so more may go.
        public var nxdomainRate = 5000.0
        /// `rrl_slip`: every n-th dropped response goes out truncated (0: none, 1: all).
        public var slip = 2
        /// `rrl_ipv4_prefix`, `rrl_ipv6_prefix`: the bits of the source address that count.
        public var ipv4Prefix = 24
        public var ipv6Prefix = 56
        /// `rrl_buckets`: responses tracked at once (a bucket is 40 bytes).
        public var buckets = 65_536
        /// `rrl_exempt`: sources never limited.
        public var exempt: [CIDR] = []

        public init() {}

        static let keys: Set<String> = ["rrl", "rrl_rate", "rrl_nxdomain_rate", "rrl_slip", "rrl_ipv4_prefix", "rrl_ipv6_prefix", "rrl_buckets", "rrl_exempt"]

        /// The settings from `services.dns`, or nil with `rrl: false`.
        static func parse(_ options: ServiceOptions) throws(ConfigError) -> Settings? {
            guard let reader = options.reader else { return Settings() }
            if try reader.bool("rrl") == false { return nil }
            var settings = Settings()
            if let value = try reader.int("rrl_rate", range: 1...10_000_000) { settings.rate = Double(value) }
            if let value = try reader.int("rrl_nxdomain_rate", range: 1...10_000_000) { settings.nxdomainRate = Double(value) }
            if let value = try reader.int("rrl_slip", range: 0...100) { settings.slip = value }
            if let value = try reader.int("rrl_ipv4_prefix", range: 8...32) { settings.ipv4Prefix = value }
            if let value = try reader.int("rrl_ipv6_prefix", range: 16...128) { settings.ipv6Prefix = value }
            if let value = try reader.int("rrl_buckets", range: 1024...(1 << 24)) { settings.buckets = value }
            for text in try reader.stringList("rrl_exempt") ?? [] {
                guard let cidr = CIDR(text) else { throw options.error("rrl_exempt", "'\(text)' is not an address or CIDR") }
                settings.exempt.append(cidr)
            }
            return settings
        }
    }

    /// What to do with one response.
    public enum Decision: Equatable, Sendable {
        case send
        /// Over the rate: nothing is sent (`first`: the first of a run, worth a log line).
        case drop(first: Bool)
        /// Over the rate: an empty truncated response is sent instead.
        case slip(first: Bool)
    }

    /// The kinds of answers counted apart.
    enum ResponseClass: UInt8 {
        case positive = 1, nodata, nxdomain, referral, error, any
    }

    private struct Bucket {
        var key: UInt64 = 0
        var tokens: Double = 0
        var updated: Int64 = 0
        var dropped: UInt32 = 0
        var limited = false
    }

    public let settings: Settings
    private let shards: [NIOLockedValueBox<[Bucket]>]
    private let perShard: Int
    static let shardCount = 16

    public init(settings: Settings) {
        self.settings = settings
        perShard = max(64, settings.buckets / Self.shardCount)
        shards = (0..<Self.shardCount).map { _ in NIOLockedValueBox([Bucket](repeating: Bucket(), count: max(64, settings.buckets / Self.shardCount))) }
    }

    /// Decides for `reply` (this server's response, wire format) going to `source`.
    /// `now`: monotonic nanoseconds.
    public func decide(reply: UnsafeRawBufferPointer, source: SocketAddress, now: Int64) -> Decision {
        guard let (kind, name, type) = Self.classify(reply) else { return .send }
        guard let prefix = Self.prefix(source, ipv4: settings.ipv4Prefix, ipv6: settings.ipv6Prefix) else { return .send }
        if !settings.exempt.isEmpty, settings.exempt.contains(where: { $0.contains(source) }) { return .send }
        let rate = kind == .nxdomain ? settings.nxdomainRate : settings.rate
        var key = prefix &* 0x9E37_79B9_7F4A_7C15
        key ^= UInt64(kind.rawValue) << 56 ^ UInt64(type) << 40
        key = (key ^ name) &* 0xBF58_476D_1CE4_E5B9
        key ^= key >> 31
        if key == 0 { key = 1 }
        let shard = Int(key >> 60) % Self.shardCount
        let index = Int((key >> 8) % UInt64(perShard))
        let slip = settings.slip
        return shards[shard].withLockedValue { buckets in
            var bucket = buckets[index]
            defer { buckets[index] = bucket }
            if bucket.key != key {
                // A new response (or another that shared the slot, which starts afresh).
                bucket = Bucket(key: key, tokens: rate - 1, updated: now, dropped: 0, limited: false)
                return .send
            }
            let elapsed = Double(max(0, now - bucket.updated)) / 1e9
            bucket.tokens = min(rate, bucket.tokens + elapsed * rate)
            bucket.updated = now
            if bucket.tokens >= 1 {
                bucket.tokens -= 1
                bucket.limited = false
                return .send
            }
            let first = !bucket.limited
            bucket.limited = true
            bucket.dropped &+= 1
            if slip > 0, bucket.dropped % UInt32(slip) == 0 { return .slip(first: first) }
            return .drop(first: first)
        }
    }

    /// The bits of a source address that count, as one number (nil: not an IP address).
    static func prefix(_ address: SocketAddress, ipv4: Int, ipv6: Int) -> UInt64? {
        switch address {
        case .v4(let v4):
            // struct sockaddr_in: family (2 bytes), port (2), address (4, network order).
            let raw = withUnsafeBytes(of: v4.address) { UInt32(bigEndian: $0.loadUnaligned(fromByteOffset: 4, as: UInt32.self)) }
            let mask: UInt32 = ipv4 >= 32 ? .max : ~(UInt32.max >> UInt32(ipv4))
            return UInt64(raw & mask) | 4 << 56
        case .v6(let v6):
            // struct sockaddr_in6: family, port, flow info, then the address at offset 8.
            let (high, low) = withUnsafeBytes(of: v6.address) { raw in
                (UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)),
                 UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self)))
            }
            // An IPv4-mapped address counts as its IPv4 address.
            if high == 0, low >> 32 == 0xFFFF {
                let raw = UInt32(truncatingIfNeeded: low)
                let mask: UInt32 = ipv4 >= 32 ? .max : ~(UInt32.max >> UInt32(ipv4))
                return UInt64(raw & mask) | 4 << 56
            }
            let highMask: UInt64 = ipv6 >= 64 ? .max : ~(UInt64.max >> UInt64(ipv6))
            let lowMask: UInt64 = ipv6 <= 64 ? 0 : (ipv6 >= 128 ? .max : ~(UInt64.max >> UInt64(ipv6 - 64)))
            return ((high & highMask) &* 0x100_0000_01B3) ^ (low & lowMask) ^ 6 << 56
        case .unixDomainSocket:
            return nil
        }
    }

    // MARK: - Reading a response

    /// The class of a response, the hash of the name it is counted by and the query type (0
    /// where the type does not count); nil for what is not a response of this server's making.
    static func classify(_ reply: UnsafeRawBufferPointer) -> (ResponseClass, UInt64, UInt16)? {
        guard reply.count >= 12 else { return nil }
        let flags = UInt16(reply[2]) << 8 | UInt16(reply[3])
        guard flags & 0x8000 != 0 else { return nil }
        let rcode = flags & 0x0F
        let authoritative = flags & 0x0400 != 0
        let questions = Int(reply[4]) << 8 | Int(reply[5])
        let answers = Int(reply[6]) << 8 | Int(reply[7])
        let authorities = Int(reply[8]) << 8 | Int(reply[9])
        guard questions == 1 else { return (.error, 0, 0) }
        var offset = 12
        guard let questionName = name(in: reply, at: &offset), offset + 4 <= reply.count else { return (.error, 0, 0) }
        let type = UInt16(reply[offset]) << 8 | UInt16(reply[offset + 1])
        offset += 4
        switch rcode {
        case 0:
            if type == 255 { return (.any, questionName, 0) }
            if answers > 0 { return (.positive, questionName, type) }
            if !authoritative, authorities > 0 {
                // A referral: counted by the delegation (the owner of the first NS record).
                guard skipRecords(answers, in: reply, at: &offset), let owner = name(in: reply, at: &offset) else { return (.error, 0, 0) }
                return (.referral, owner, 0)
            }
            return (.nodata, questionName, type)
        case 3:
            // NXDOMAIN: counted by the zone, the owner of the SOA in the authority section.
            guard skipRecords(answers, in: reply, at: &offset) else { return (.error, 0, 0) }
            if authorities > 0, let zone = name(in: reply, at: &offset) { return (.nxdomain, zone, 0) }
            return (.nxdomain, 0, 0)
        default:
            return (.error, 0, 0)
        }
    }

    /// Skips `count` resource records.
    private static func skipRecords(_ count: Int, in message: UnsafeRawBufferPointer, at offset: inout Int) -> Bool {
        for _ in 0..<count {
            guard name(in: message, at: &offset) != nil, offset + 10 <= message.count else { return false }
            let length = Int(message[offset + 8]) << 8 | Int(message[offset + 9])
            offset += 10 + length
            guard offset <= message.count else { return false }
        }
        return true
    }

    /// The hash of the name at `offset` (compression pointers followed, letters folded to lower
    /// case); `offset` moves past it. Nil when it is malformed.
    static func name(in message: UnsafeRawBufferPointer, at offset: inout Int) -> UInt64? {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        var position = offset
        var jumped = false
        var jumps = 0
        var total = 0
        while true {
            guard position < message.count else { return nil }
            let length = Int(message[position])
            if length == 0 {
                if !jumped { offset = position + 1 }
                return hash
            }
            if length & 0xC0 == 0xC0 {
                guard position + 1 < message.count, jumps < 32 else { return nil }
                let target = (length & 0x3F) << 8 | Int(message[position + 1])
                if !jumped { offset = position + 2 }
                jumped = true
                jumps += 1
                guard target < position else { return nil }
                position = target
                continue
            }
            guard length < 64, position + 1 + length <= message.count else { return nil }
            total += length + 1
            guard total < 256 else { return nil }
            hash = (hash ^ UInt64(length)) &* 0x100_0000_01B3
            for byte in message[(position + 1)..<(position + 1 + length)] {
                let folded = byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte
                hash = (hash ^ UInt64(folded)) &* 0x100_0000_01B3
            }
            position += 1 + length
        }
    }

    /// The truncated response sent instead of a dropped one: the header (TC set, no records)
    /// and the question, no larger than the query was.
    static func truncated(_ reply: UnsafeRawBufferPointer, allocator: ByteBufferAllocator) -> ByteBuffer? {
        guard reply.count >= 12 else { return nil }
        var offset = 12
        guard (Int(reply[4]) << 8 | Int(reply[5])) == 1, name(in: reply, at: &offset) != nil, offset + 4 <= reply.count else { return nil }
        let end = offset + 4
        var out = allocator.buffer(capacity: end)
        out.writeBytes(UnsafeRawBufferPointer(rebasing: reply[0..<2]))
        out.writeInteger(UInt8(reply[2] | 0x02))
        out.writeInteger(reply[3])
        out.writeInteger(UInt16(1))
        out.writeInteger(UInt16(0))
        out.writeInteger(UInt16(0))
        out.writeInteger(UInt16(0))
        out.writeBytes(UnsafeRawBufferPointer(rebasing: reply[12..<end]))
        return out
    }
}
