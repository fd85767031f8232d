import NIOCore

/// Work a connection puts off to a later turn of its event loop, so that one busy connection
/// (a client pipelining a megabyte of commands) yields to the others on the loop. However
/// often it is asked before then, the work runs once. Used on the connection's loop only.
public final class LaterTurn {
    private var scheduled = false

    public init() {}

    public func schedule(on loop: any EventLoop, _ body: @escaping () -> Void) {
        guard !scheduled else { return }
        scheduled = true
        loop.assumeIsolated().execute {
            self.scheduled = false
            body()
        }
    }
}
