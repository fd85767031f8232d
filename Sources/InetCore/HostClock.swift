#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CInetSupport

/// The time the host's services tell: the system clock moved by the config's `clock_offset`
/// (seconds, may be negative), as INetSim's fake time does for sandboxes. NTP, daytime and time
/// read it alike, so a sample sees one consistent (fake) date whichever service it asks.
public struct HostClock: Sendable, Equatable {
    /// Seconds added to the system clock.
    public var offset: Double

    public init(offset: Double = 0) {
        self.offset = offset
    }

    /// The largest offset the config accepts: about a century either way.
    public static let maximumOffset = 3_155_760_000.0

    /// Now, as whole seconds and nanoseconds since 1970-01-01 UTC (the offset applied).
    public func now() -> (seconds: Int64, nanoseconds: Int64) {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        guard offset != 0 else { return (Int64(time.tv_sec), Int64(time.tv_nsec)) }
        let whole = offset.rounded(.down)
        var seconds = Int64(time.tv_sec) + Int64(whole)
        var nanoseconds = Int64(time.tv_nsec) + Int64(((offset - whole) * 1e9).rounded())
        if nanoseconds >= 1_000_000_000 {
            nanoseconds -= 1_000_000_000
            seconds += 1
        }
        return (seconds, nanoseconds)
    }

    /// Now in whole seconds since 1970 (the offset applied).
    public func seconds() -> Int {
        Int(now().seconds)
    }

    /// What the kernel says of the system clock's synchronisation (adjtimex(2), read only).
    public struct KernelState: Sendable, Equatable {
        public enum Leap: Sendable, Equatable {
            case none, insert, delete
        }

        /// False when the kernel marks the clock unsynchronised (TIME_ERROR, STA_UNSYNC):
        /// no NTP daemon (or PTP, or an administrator) is keeping it right.
        public var synchronized: Bool
        /// A leap second announced for the end of the day.
        public var leap: Leap
        /// The kernel's estimate of its error, in seconds.
        public var estimatedError: Double
        public var maximumError: Double

        public init(synchronized: Bool, leap: Leap, estimatedError: Double, maximumError: Double) {
            self.synchronized = synchronized
            self.leap = leap
            self.estimatedError = estimatedError
            self.maximumError = maximumError
        }
    }

    public static func kernelState() -> KernelState {
        var maximum = 0
        var estimated = 0
        let state = inetkit_clock_state(&maximum, &estimated)
        let leap: KernelState.Leap = state == 1 ? .insert : state == 2 ? .delete : .none
        return KernelState(synchronized: state >= 0 && state != 5, leap: leap,
                           estimatedError: Double(max(0, estimated)) / 1e6, maximumError: Double(max(0, maximum)) / 1e6)
    }
}
