import Foundation
import Synchronization

/// A one-line progress display on standard error (for `http get` and `ftp get`/`put`): bytes,
/// a bar and percent when the size is known, and the rate; redrawn at most ten times a second.
/// Sendable by its `Mutex`: the transfer's callbacks may run on any thread.
final class TransferProgress: Sendable {
    private struct State {
        var done = 0
        var lastDraw = ContinuousClock.now - .seconds(1)
        var drawn = false
    }

    private let name: String
    private let total: Int?
    private let started = ContinuousClock.now
    private let state = Mutex(State())

    init(name: String = "", total: Int? = nil) {
        self.name = name
        self.total = total
    }

    /// `count` more bytes moved.
    func add(_ count: Int) {
        state.withLock { state in
            state.done += count
            draw(&state, total: total)
        }
    }

    /// `received` bytes in all so far, of `total` when known.
    func update(_ received: Int, _ total: Int?) {
        state.withLock { state in
            state.done = received
            draw(&state, total: total ?? self.total)
        }
    }

    private func draw(_ state: inout State, total: Int?) {
        let now = ContinuousClock.now
        guard now - state.lastDraw > .milliseconds(100) || state.done == total else { return }
        state.lastDraw = now
        state.drawn = true
        let elapsed = max(Double((now - started).components.seconds) + Double((now - started).components.attoseconds) / 1e18, 1e-3)
        var line = "\r" + (name.isEmpty ? "" : name + "  ")
        if let total, total > 0 {
            let fraction = min(1, Double(state.done) / Double(total))
            let filled = Int(fraction * 30)
            line += "[" + String(repeating: "#", count: filled) + String(repeating: " ", count: 30 - filled) + "] "
            line += String(format: "%3.0f%% ", fraction * 100)
        }
        line += String(format: "%.1f MB  %.1f MB/s   ", Double(state.done) / 1e6, Double(state.done) / elapsed / 1e6)
        FileHandle.standardError.write(Data(line.utf8))
    }

    /// Ends the line (if anything was drawn).
    func finish() {
        if state.withLock({ $0.drawn }) { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
