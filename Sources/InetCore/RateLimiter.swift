#if canImport(Glibc)
import Glibc
#endif
import NIOConcurrencyHelpers
import NIOCore

/// Per-source token buckets for UDP answers, so InetKit's UDP services cannot be used to
/// amplify traffic towards a spoofed victim. Not thread-safe: one per event-loop handler.
/// The table is bounded: idle full buckets are swept, and if a flood of distinct sources
/// still fills it, it starts over (each reset gives a victim at most one more burst).
struct SourceRateLimiter {
    struct Bucket {
        var tokens: Double
        var updated: NIODeadline
        var limited: Bool
    }

    enum Decision: Equatable {
        case allow
        /// The first datagram refused after a run of allowed ones (worth one log line).
        case startLimiting
        case deny
    }

    private(set) var buckets: [SourceKey: Bucket] = [:]
    var rate: Double
    var burst: Double
    var maximumSources: Int

    init(rate: Double, burst: Double, maximumSources: Int) {
        self.rate = rate
        self.burst = burst
        self.maximumSources = maximumSources
    }

    mutating func admit(_ source: SourceKey, now: NIODeadline) -> Decision {
        guard rate > 0 else { return .allow }
        if var bucket = buckets[source] {
            let elapsed = Double((now - bucket.updated).nanoseconds) / 1e9
            bucket.tokens = min(burst, bucket.tokens + max(0, elapsed) * rate)
            bucket.updated = now
            if bucket.tokens >= 1 {
                bucket.tokens -= 1
                bucket.limited = false
                buckets[source] = bucket
                return .allow
            }
            let first = !bucket.limited
            bucket.limited = true
            buckets[source] = bucket
            return first ? .startLimiting : .deny
        }
        if buckets.count >= maximumSources { sweep(now: now) }
        buckets[source] = Bucket(tokens: burst - 1, updated: now, limited: false)
        return .allow
    }

    private mutating func sweep(now: NIODeadline) {
        buckets = buckets.filter { _, bucket in
            let elapsed = Double((now - bucket.updated).nanoseconds) / 1e9
            return bucket.tokens + elapsed * rate < burst
        }
        if buckets.count >= maximumSources { buckets.removeAll(keepingCapacity: true) }
    }
}

/// A source IP address (port ignored) as a hashable value without allocation.
struct SourceKey: Hashable {
    var high: UInt64
    var low: UInt64

    init?(_ address: SocketAddress) {
        // Read the address bytes straight from the sockaddr: sockaddr_in keeps the IPv4 address
        // at offset 4, sockaddr_in6 the IPv6 address at offset 8.
        let key: (UInt64, UInt64)? = address.withSockAddr { pointer, length in
            let raw = UnsafeRawBufferPointer(start: UnsafeRawPointer(pointer), count: length)
            switch address.protocol {
            case .inet where length >= 8:
                return (0, raw[4..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
            case .inet6 where length >= 24:
                let high = raw[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                var low = raw[16..<24].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                // An IPv4-mapped IPv6 address counts as the IPv4 address.
                if high == 0, low >> 32 == 0xffff { low &= 0xffff_ffff }
                return (high, low)
            default:
                return nil
            }
        }
        guard let key else { return nil }
        high = key.0
        low = key.1
    }
}

/// Per-source token buckets shared by a service's event loops, for limits a service applies
/// itself to some of its answers (SNMP's GETBULK responses, say), on top of the host's
/// `udp_rate`. Thread-safe.
public final class SharedSourceLimiter: Sendable {
    public enum Decision: Sendable, Equatable {
        case allow
        /// The first refused after a run of allowed ones (worth one log line).
        case startLimiting
        case deny
    }

    private let limiter: NIOLockedValueBox<SourceRateLimiter>
    /// Answers per second per source address (0: no limit).
    public let rate: Double

    public init(rate: Double, burst: Double, maximumSources: Int = 100_000) {
        self.rate = rate
        limiter = NIOLockedValueBox(SourceRateLimiter(rate: rate, burst: max(1, burst), maximumSources: maximumSources))
    }

    public func admit(_ source: SocketAddress?, now: NIODeadline = .now()) -> Decision {
        guard rate > 0, let source, let key = SourceKey(source) else { return .allow }
        switch limiter.withLockedValue({ $0.admit(key, now: now) }) {
        case .allow: return .allow
        case .startLimiting: return .startLimiting
        case .deny: return .deny
        }
    }
}
