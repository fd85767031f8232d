/// An NTP timestamp (RFC 5905 §6): 32 bits of seconds since 1900-01-01 00:00 UTC and 32 bits of
/// fraction. The seconds wrap every 2^32 s (era 0 ends in February 2036), so turning one back
/// into a date needs a reference time near it.
public struct NTPTimestamp: Hashable, Sendable, CustomStringConvertible {
    public var seconds: UInt32
    public var fraction: UInt32

    /// Seconds from the NTP prime epoch (1900) to the Unix epoch (1970).
    public static let unixEpoch: Int64 = 2_208_988_800
    public static let eraLength = 4_294_967_296.0
    public static let zero = NTPTimestamp(seconds: 0, fraction: 0)

    public init(seconds: UInt32, fraction: UInt32) {
        self.seconds = seconds
        self.fraction = fraction
    }

    public init(raw: UInt64) {
        seconds = UInt32(truncatingIfNeeded: raw >> 32)
        fraction = UInt32(truncatingIfNeeded: raw)
    }

    /// The timestamp of a Unix time: any era (after 2036 the seconds have wrapped into era 1,
    /// before 1900 they are in era -1), nanoseconds clamped to 0..<10^9.
    public init(unixSeconds: Int64, nanoseconds: Int64) {
        let (ntp, _) = unixSeconds.addingReportingOverflow(Self.unixEpoch)
        seconds = UInt32(truncatingIfNeeded: ntp)
        let nanos = UInt64(min(max(nanoseconds, 0), 999_999_999))
        fraction = UInt32(truncatingIfNeeded: (nanos << 32) / 1_000_000_000)
    }

    /// The timestamp of a Unix time in seconds (with fraction).
    public init(unixTime: Double) {
        let whole = unixTime.rounded(.down)
        guard whole.isFinite, abs(whole) < 9e15 else {
            self = .zero
            return
        }
        self.init(unixSeconds: Int64(whole), nanoseconds: Int64(((unixTime - whole) * 1e9).rounded(.down)))
    }

    public var raw: UInt64 { UInt64(seconds) << 32 | UInt64(fraction) }

    /// The Unix time (seconds, with fraction) this timestamp stands for in the era that puts it
    /// nearest `reference` (a Unix time): within 68 years of it.
    public func unixTime(near reference: Double) -> Double {
        let value = Double(Int64(seconds) - Self.unixEpoch) + Double(fraction) / Self.eraLength
        guard reference.isFinite else { return value }
        let eras = ((reference - value) / Self.eraLength).rounded()
        return value + eras * Self.eraLength
    }

    public var description: String { "\(seconds).\(fraction)" }
}

/// NTP's short format (RFC 5905 §6): 16 bits of seconds and 16 of fraction, for root delay and
/// root dispersion.
public enum NTPShortFormat {
    /// Seconds as the short format, clamped to 0...65535.99998.
    public static func encode(_ seconds: Double) -> UInt32 {
        guard seconds.isFinite, seconds > 0 else { return 0 }
        return UInt32(min(seconds * 65_536, Double(UInt32.max)).rounded(.down))
    }

    public static func decode(_ value: UInt32) -> Double {
        Double(value) / 65_536
    }
}
