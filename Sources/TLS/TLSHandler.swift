import NIOCore

/// Events a `TLSHandler` sends up the pipeline with `fireUserInboundEventTriggered`.
public enum TLSEvent: Sendable, Equatable {
    /// The handshake finished; plaintext may flow. Carries what was negotiated.
    case handshakeCompleted(TLSSessionInfo)
    /// The peer sent close_notify: a clean TLS shutdown. The handler answers and closes.
    case shutdownCompleted
}

/// Runs the CPU-heavy steps of server handshakes away from the event loops.
///
/// A handshake step costs about a millisecond of CPU (key exchange, signature, OpenSSL's own
/// bookkeeping); on an event loop it delays every connection of that loop, and a few hundred
/// clients reconnecting at once would hold the chat up for a large fraction of a second. Given an
/// executor, a server-side `TLSHandler` runs each step there and only moves bytes on the loop.
public protocol TLSHandshakeExecutor: Sendable {
    /// Runs `job` on another thread; false if it cannot take more now (the step then runs on the
    /// event loop, so a handshake always makes progress).
    func execute(_ job: @escaping @Sendable () -> Void) -> Bool
}

/// Puts a `TLSEngine` into a SwiftNIO pipeline, on the server or the client side.
///
/// Below it flows ciphertext, above it plaintext. It runs the handshake (client: on
/// `channelActive`; server: when the first bytes arrive) under a timeout; holds writes made before
/// the handshake completes and sends them after it; completes each write's promise when its
/// ciphertext is written; decrypts per read burst and delivers on `channelReadComplete`, never
/// reading from the socket unless asked (read backpressure); sends close_notify on close and
/// waits briefly for the peer's; tells a clean shutdown (`TLSEvent.shutdownCompleted`) from an
/// unclean EOF (`TLSError.uncleanShutdown`). A failed handshake sends OpenSSL's alert, fires a
/// `TLSError` a person can read, and closes. A server closes a peer that speaks plaintext at its
/// first byte, optionally answering it with one plaintext line first. With a
/// `TLSHandshakeExecutor`, a server runs its handshake steps there, off the event loop.
public final class TLSHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private enum State {
        case idle, handshaking, active, closing, closed
    }

    /// Plaintext writes are coalesced into records of up to this size.
    private static let recordCoalescingLimit = 16 * 1024
    /// Ciphertext is handed to the channel whenever this much has accumulated during a flush, and
    /// plaintext is delivered whenever this much has been decrypted during a read burst. Both stay
    /// below glibc's mmap threshold (128 KiB), so buffers come from the heap, not fresh pages.
    private static let chunk = 64 * 1024
    /// Fewer bytes than any server flight with a certificate (see `offloadedStepDone`).
    private static let serverFlightMinimum = 512

    private let engine: TLSEngine
    private let handshakeTimeout: TimeAmount
    private let closeTimeout: TimeAmount
    /// Kept as given: a literal costs nothing per connection (an array of its bytes did, 184 bytes).
    private let plaintextReply: String?
    private var state: State = .idle
    private var timer: Scheduled<Void>?
    /// With the channel's allocator, taken once (reading it through the context per flush cost
    /// two reference-count round trips per recipient of every relayed message), and the count of
    /// flushed writes: one property for the write path, one exclusivity check per write.
    private var pendingWrites = WriteQueue()
    private var plaintext: ByteBuffer?
    private var closePromise: EventLoopPromise<Void>?
    private var readRequested = false
    private var receivedAnything = false
    private let handshakeExecutor: TLSHandshakeExecutor?
    /// Bytes from the peer waiting for the next handshake step while one runs elsewhere: the
    /// engine belongs to the executor's thread until the step is back.
    private var handshakeInput: ByteBuffer?
    private var handshakeStepRunning = false
    /// The server's first flight (ServerHello … Finished: the key exchange and the signature, the
    /// expensive part) has been made. Later steps (checking the client's Finished) cost microseconds:
    /// they run on the loop, which saves a round trip between threads per connection.
    private var serverFlightMade = false

    /// What the handshake negotiated, once it has completed.
    public private(set) var sessionInfo: TLSSessionInfo?

    /// - Parameters:
    ///   - engine: a fresh engine for this connection.
    ///   - handshakeTimeout: how long the handshake may take from `channelActive`.
    ///   - closeTimeout: how long to wait for the peer's close_notify after sending ours.
    ///   - plaintextReply: server only: a line sent in plaintext to a peer that speaks plaintext
    ///     before it is closed (an IRC server sends `ERROR :...` so the person sees why).
    ///   - handshakeExecutor: server only: where handshake steps run; nil runs them on the loop.
    public init(
        engine: TLSEngine,
        handshakeTimeout: TimeAmount = .seconds(10),
        closeTimeout: TimeAmount = .seconds(3),
        plaintextReply: String? = nil,
        handshakeExecutor: TLSHandshakeExecutor? = nil
    ) {
        self.engine = engine
        self.handshakeTimeout = handshakeTimeout
        self.closeTimeout = closeTimeout
        self.plaintextReply = plaintextReply
        self.handshakeExecutor = engine.context.configuration.role == .server ? handshakeExecutor : nil
    }

    /// A handler with a new engine for `context`.
    public convenience init(
        context: TLSContext,
        serverName: String? = nil,
        handshakeTimeout: TimeAmount = .seconds(10),
        closeTimeout: TimeAmount = .seconds(3),
        plaintextReply: String? = nil,
        handshakeExecutor: TLSHandshakeExecutor? = nil
    ) throws(TLSError) {
        self.init(
            engine: try TLSEngine(context: context, serverName: serverName),
            handshakeTimeout: handshakeTimeout, closeTimeout: closeTimeout, plaintextReply: plaintextReply,
            handshakeExecutor: handshakeExecutor)
    }

    private var isServer: Bool { engine.context.configuration.role == .server }

    // MARK: Lifecycle

    public func handlerAdded(context: ChannelHandlerContext) {
        pendingWrites.allocator = context.channel.allocator
        if context.channel.isActive { start(context: context) }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        cancelTimer()
        failPendingWrites(ChannelError.ioOnClosedChannel)
    }

    public func channelActive(context: ChannelHandlerContext) {
        start(context: context)
        context.fireChannelActive()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        let previous = state
        state = .closed
        cancelTimer()
        failPendingWrites(ChannelError.ioOnClosedChannel)
        if let promise = closePromise {
            closePromise = nil
            promise.succeed(())
        }
        switch previous {
        case .handshaking where receivedAnything || !isServer:
            context.fireErrorCaught(TLSError.closedDuringHandshake)
        case .active:
            context.fireErrorCaught(TLSError.uncleanShutdown)
        default:
            break
        }
        context.fireChannelInactive()
    }

    private func start(context: ChannelHandlerContext) {
        guard state == .idle else { return }
        state = .handshaking
        let timeout = handshakeTimeout
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) {
            // Strong capture: the context holds this handler anyway, and a weak reference would give
            // the handler a side table (slower reference counting on every write). Cancelled on removal.
            guard self.state == .handshaking else { return }
            self.fail(context: context, error: .handshakeTimedOut(milliseconds: timeout.nanoseconds / 1_000_000))
        }
        if !isServer { advanceHandshake(context: context) }
    }

    // MARK: Inbound

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        switch state {
        case .idle:
            start(context: context)
            receiveDuringHandshake(context: context, buffer)
        case .handshaking:
            receiveDuringHandshake(context: context, buffer)
        case .active, .closing:
            engine.receive(buffer)
            decrypt(context: context)
        case .closed:
            break
        }
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        if deliverPlaintext(context: context) {
            readRequested = false
        } else if readRequested && state != .closed {
            // The bytes read were all TLS overhead: ask again, or a reader waiting for data stalls.
            context.read()
        }
        context.fireChannelReadComplete()
    }

    private func receiveDuringHandshake(context: ChannelHandlerContext, _ buffer: ByteBuffer) {
        if isServer && !receivedAnything, let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self), first != 0x16 {
            // Every TLS connection starts with a handshake record (content type 22).
            receivedAnything = true
            rejectPlaintext(context: context, buffer)
            return
        }
        receivedAnything = true
        if handshakeExecutor != nil {
            // A copy of the few hundred bytes, so the channel's read buffer is free again at once
            // instead of waiting for the step (and the channel allocating new ones meanwhile).
            if handshakeInput == nil { handshakeInput = context.channel.allocator.buffer(capacity: buffer.readableBytes) }
            handshakeInput!.writeImmutableBuffer(buffer)
        } else {
            engine.receive(buffer)
        }
        advanceHandshake(context: context)
    }

    private func rejectPlaintext(context: ChannelHandlerContext, _ buffer: ByteBuffer) {
        let prefix = buffer.getBytes(at: buffer.readerIndex, length: min(buffer.readableBytes, 16)) ?? []
        let shown = String(decoding: prefix.map { (0x20...0x7e).contains($0) ? $0 : UInt8(ascii: ".") }, as: UTF8.self)
        if let plaintextReply {
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: plaintextReply)), promise: nil)
        }
        fail(context: context, error: .plaintextPeer(firstBytes: "\"\(shown)\""))
    }

    private func advanceHandshake(context: ChannelHandlerContext) {
        guard !handshakeStepRunning else { return }  // the step that is out will look at the new bytes
        guard let executor = handshakeExecutor, !serverFlightMade else {
            if let input = handshakeInput {
                handshakeInput = nil
                engine.receive(input)
            }
            handshakeStepped(context: context, engine.handshake())
            return
        }
        let input = handshakeInput
        handshakeInput = nil
        handshakeStepRunning = true
        let engine = Unchecked(self.engine)
        let back = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        let accepted = executor.execute {
            if let input { engine.value.receive(input) }
            let result = engine.value.handshake()
            back.eventLoop.execute { back.value.handler.offloadedStepDone(context: back.value.context, result) }
        }
        if !accepted {  // the executor is full: this step runs here
            handshakeStepRunning = false
            if let input { self.engine.receive(input) }
            handshakeStepped(context: context, self.engine.handshake())
        }
    }

    private func offloadedStepDone(context: ChannelHandlerContext, _ result: TLSEngine.HandshakeResult) {
        handshakeStepRunning = false
        guard state == .handshaking else { return }  // closed or timed out meanwhile
        // The server's flight carries its certificate chain (always well over 512 bytes); a
        // HelloRetryRequest (a client whose key share we do not take) is about 100 bytes and
        // leaves the expensive step still to come, so it does not count.
        if engine.pendingCiphertextBytes >= Self.serverFlightMinimum { serverFlightMade = true }
        if result == .inProgress, handshakeInput != nil {
            sendCiphertext(context: context)
            advanceHandshake(context: context)
            return
        }
        if let input = handshakeInput {  // application data right behind the peer's Finished
            handshakeInput = nil
            engine.receive(input)
        }
        handshakeStepped(context: context, result)
        // This is not a read burst, so no channelReadComplete follows to deliver what was decrypted.
        if deliverPlaintext(context: context) { context.fireChannelReadComplete() }
    }

    private func handshakeStepped(context: ChannelHandlerContext, _ result: TLSEngine.HandshakeResult) {
        switch result {
        case .inProgress:
            sendCiphertext(context: context)
        case .complete:
            state = .active
            cancelTimer()
            let info = engine.sessionInfo
            sessionInfo = info
            sendCiphertext(context: context)
            context.fireUserInboundEventTriggered(TLSEvent.handshakeCompleted(info))
            // Application data may have arrived together with the peer's Finished.
            if state == .active && engine.pendingInputBytes > 0 { decrypt(context: context) }
            if state == .active && pendingWrites.flushed > 0 { encryptFlushedWrites(context: context) }
        case let .failed(error):
            sendCiphertext(context: context)  // the alert tells the peer why
            fail(context: context, error: error)
        }
    }

    private func decrypt(context: ChannelHandlerContext) {
        var buffer: ByteBuffer
        if let existing = plaintext {
            buffer = existing
            plaintext = nil  // keep one reference, so appending does not copy
        } else {
            buffer = context.channel.allocator.buffer(capacity: 0)
        }
        let result = engine.readPlaintext(into: &buffer, limit: Self.chunk)
        if buffer.readableBytes > 0 { plaintext = buffer }
        sendCiphertext(context: context)  // key updates, alerts
        switch result {
        case .bytes:
            if engine.pendingInputBytes > 0 && state != .closed {
                // A large burst: hand this part up now and decrypt the rest into a new buffer.
                _ = deliverPlaintext(context: context)
                if state == .active || state == .closing { decrypt(context: context) }
            }
        case .closed:
            _ = deliverPlaintext(context: context)
            peerClosed(context: context)
        case let .failed(error):
            _ = deliverPlaintext(context: context)
            fail(context: context, error: error)
        }
    }

    private func deliverPlaintext(context: ChannelHandlerContext) -> Bool {
        guard let buffer = plaintext else { return false }
        plaintext = nil
        context.fireChannelRead(wrapInboundOut(buffer))
        return true
    }

    private func peerClosed(context: ChannelHandlerContext) {
        guard state == .active || state == .closing else { return }
        _ = engine.shutdown()
        sendCiphertext(context: context)
        context.fireUserInboundEventTriggered(TLSEvent.shutdownCompleted)
        finishClose(context: context)
    }

    // MARK: Outbound

    public func read(context: ChannelHandlerContext) {
        readRequested = true
        context.read()
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        enqueue(unwrapOutboundIn(data), promise: promise)
    }

    /// Writes `buffer` as `write(context:data:promise:)` with no promise does, called by the
    /// handler above on the channel's loop without passing through the pipeline: a relayed
    /// message to a hundred recipients was a hundred context writes, each boxing the buffer and
    /// counting references to the contexts and handlers on its way (BENCHMARKS.md). The caller
    /// stops calling once this handler is removed (its own `handlerRemoved`).
    public func enqueue(_ buffer: ByteBuffer) {
        enqueue(buffer, promise: nil)
    }

    private func enqueue(_ buffer: ByteBuffer, promise: EventLoopPromise<Void>?) {
        switch state {
        case .idle, .handshaking, .active:
            if promise == nil && buffer.readableBytes < Self.recordCoalescingLimit {
                pendingWrites.appendCoalescing(buffer, limit: Self.recordCoalescingLimit)
            } else {
                pendingWrites.append(buffer, promise)
            }
        case .closing:
            promise?.fail(TLSError.writeAfterClose)
        case .closed:
            promise?.fail(ChannelError.ioOnClosedChannel)
        }
    }

    public func flush(context: ChannelHandlerContext) {
        pendingWrites.markFlushed()
        if state == .active {
            let writes = pendingWrites.flushed
            encryptFlushedWrites(context: context)
            // A flush of one write: the connection is not busy, so a ring grown by a burst (the
            // welcome, a backlog) need not stay allocated while it idles.
            if writes <= 1 { pendingWrites.releaseSpareRoom() }
        }
    }

    public func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if mode == .input {
            context.close(mode: mode, promise: promise)
            return
        }
        switch state {
        case .idle, .handshaking:
            state = .closed
            cancelTimer()
            failPendingWrites(ChannelError.ioOnClosedChannel)
            context.close(mode: .all, promise: promise)
        case .active:
            state = .closing
            closePromise = promise
            let result = engine.shutdown()
            sendCiphertext(context: context)
            if result == .sent {
                timer = context.eventLoop.assumeIsolated().scheduleTask(in: closeTimeout) {
                    self.finishClose(context: context)
                }
            } else {
                finishClose(context: context)
            }
        case .closing:
            if let promise {
                if let existing = closePromise {
                    existing.futureResult.cascade(to: promise)
                } else {
                    closePromise = promise
                }
            }
        case .closed:
            context.close(mode: mode, promise: promise)
        }
    }

    /// Encrypts every flushed write, coalescing small ones into shared records, and writes the
    /// ciphertext with one promise per chunk that completes the plaintext writes' promises.
    private func encryptFlushedWrites(context: ChannelHandlerContext) {
        var promises: [EventLoopPromise<Void>] = []
        while var (buffer, promise) = pendingWrites.popFlushed() {
            if let promise { promises.append(promise) }
            // Gather following small writes into one plaintext buffer: one record, one AEAD pass.
            if buffer.readableBytes < Self.recordCoalescingLimit, pendingWrites.flushed > 0,
               pendingWrites.firstBytes < Self.recordCoalescingLimit {
                var combined = pendingWrites.allocator.buffer(capacity: Self.recordCoalescingLimit)
                combined.writeBuffer(&buffer)
                while combined.readableBytes + pendingWrites.firstBytes <= Self.recordCoalescingLimit,
                      var (next, nextPromise) = pendingWrites.popFlushed() {
                    combined.writeBuffer(&next)
                    if let nextPromise { promises.append(nextPromise) }
                }
                buffer = combined
            }
            engine.reserveCiphertext(forPlaintext: buffer.readableBytes)
            if let error = engine.writePlaintext(buffer) {
                for promise in promises { promise.fail(error) }
                fail(context: context, error: error)
                return
            }
            if engine.pendingCiphertextBytes >= Self.chunk {
                writeCiphertext(context: context, completing: promises)
                promises = []
            }
        }
        writeCiphertext(context: context, completing: promises)
        context.flush()
    }

    private func writeCiphertext(context: ChannelHandlerContext, completing promises: [EventLoopPromise<Void>]) {
        guard let ciphertext = engine.takeCiphertext() else {
            for promise in promises { promise.succeed(()) }
            return
        }
        let promise: EventLoopPromise<Void>?
        switch promises.count {
        case 0: promise = nil
        case 1: promise = promises[0]
        default:
            let combined = context.eventLoop.makePromise(of: Void.self)
            combined.futureResult.whenComplete { result in
                for promise in promises { promise.completeWith(result) }
            }
            promise = combined
        }
        context.write(wrapOutboundOut(ciphertext), promise: promise)
    }

    /// Sends whatever OpenSSL produced outside a flush (handshake flights, alerts, close_notify).
    private func sendCiphertext(context: ChannelHandlerContext) {
        guard let ciphertext = engine.takeCiphertext() else { return }
        context.writeAndFlush(wrapOutboundOut(ciphertext), promise: nil)
    }

    // MARK: Failure and close

    private func fail(context: ChannelHandlerContext, error: TLSError) {
        guard state != .closed else { return }
        state = .closed
        cancelTimer()
        failPendingWrites(error)
        let promise = closePromise
        closePromise = nil
        context.fireErrorCaught(error)
        context.close(mode: .all, promise: promise)
    }

    private func finishClose(context: ChannelHandlerContext) {
        guard state != .closed else { return }
        state = .closed
        cancelTimer()
        failPendingWrites(ChannelError.ioOnClosedChannel)
        let promise = closePromise
        closePromise = nil
        context.close(mode: .all, promise: promise)
    }

    private func failPendingWrites(_ error: Error) {
        while let write = pendingWrites.popFirst() {
            write.promise?.fail(error)
        }
    }

    private func cancelTimer() {
        timer?.cancel()
        timer = nil
    }
}

@available(*, unavailable)
extension TLSHandler: Sendable {}

/// The plaintext writes waiting for a flush, oldest first: the oldest in the handler itself, the
/// ones behind it in a ring made when a second write comes. An idle connection keeps no ring: a
/// ring made at 4 slots and grown to 16 by the welcome burst was 0.7 KiB of every idle
/// connection (heaptrack of 2,000 idle clients).
///
/// Small writes without a promise that arrive before the next flush are copied into one buffer
/// of the queue's own (`appendCoalescing`), the newest write, kept in `open` until a flush seals
/// it: a busy connection then holds a few buffers, not an entry per relayed message (each a
/// retain of the loop's shared buffer, released again when the flush copied it into a record).
struct WriteQueue {
    typealias Write = (buffer: ByteBuffer, promise: EventLoopPromise<Void>?)
    private var head: Write?
    private var rest: CircularBuffer<Write>?
    /// The newest write, when it is a buffer of the queue's own that is not flushed yet; after
    /// `head` and `rest`. `head` is nil only when `rest` is empty.
    private var open: ByteBuffer?

    /// How many writes wait (`head`, the ring and `open`). Stored, not computed: a computed
    /// getter on the handler's property copied the whole queue, four references counted up and
    /// down, on every write and flush.
    private(set) var count = 0
    /// How many of the oldest writes the last flush covered and are not taken yet.
    private(set) var flushed = 0
    /// Where buffers of the queue's own come from: the channel's allocator.
    var allocator = ByteBufferAllocator()

    /// The size of the oldest write (0 when there is none).
    var firstBytes: Int { head?.buffer.readableBytes ?? open?.readableBytes ?? 0 }

    mutating func append(_ buffer: ByteBuffer, _ promise: EventLoopPromise<Void>?) {
        seal()
        appendSealed((buffer, promise))
        count += 1
    }

    /// Appends a write without a promise, copying it into the newest write if that one is not
    /// flushed, has no promise, and the two fit in `limit` bytes.
    mutating func appendCoalescing(_ buffer: ByteBuffer, limit: Int) {
        let size = buffer.readableBytes
        if open != nil {
            if open!.readableBytes + size <= limit {
                open!.writeImmutableBuffer(buffer)
                return
            }
            seal()
        } else if count > flushed, let newest = removeNewest(ifRoomFor: size, limit: limit) {
            var own = allocator.buffer(capacity: Swift.min(limit, Swift.max(1024, 4 * (newest.readableBytes + size))))
            own.writeImmutableBuffer(newest)
            own.writeImmutableBuffer(buffer)
            open = own  // in place of the newest write: the count stays
            return
        }
        appendSealed((buffer, nil))
        count += 1
    }

    /// A flush: every write waiting now is flushed, and nothing more is copied into them.
    mutating func markFlushed() {
        seal()
        flushed = count
    }

    /// Takes the oldest write if the last flush covered it.
    mutating func popFlushed() -> Write? {
        flushed > 0 ? popFirst() : nil
    }

    /// Ends coalescing into the newest write.
    mutating func seal() {
        guard let own = open else { return }
        open = nil
        appendSealed((own, nil))
    }

    mutating func popFirst() -> Write? {
        guard let first = head else {
            guard let own = open else { return nil }
            open = nil
            count -= 1
            flushed = Swift.max(0, flushed - 1)
            return (own, nil)
        }
        head = rest?.popFirst()
        count -= 1
        flushed = Swift.max(0, flushed - 1)
        return first
    }

    mutating func removeFirst() -> Write { popFirst()! }

    /// Frees the ring if nothing waits in it.
    mutating func releaseSpareRoom() {
        if rest?.isEmpty == true { rest = nil }
    }

    private mutating func appendSealed(_ write: Write) {
        if head == nil {
            head = write
        } else {
            if rest == nil { rest = CircularBuffer(initialCapacity: 4) }
            rest!.append(write)
        }
    }

    /// Takes the newest sealed write out if it has no promise and `size` more bytes fit with it.
    private mutating func removeNewest(ifRoomFor size: Int, limit: Int) -> ByteBuffer? {
        if let last = rest?.last {
            guard last.promise == nil, last.buffer.readableBytes + size <= limit else { return nil }
            return rest!.removeLast().buffer
        }
        guard let only = head, only.promise == nil, only.buffer.readableBytes + size <= limit else { return nil }
        head = nil
        return only.buffer
    }
}

/// Hands a value that is used by one thread at a time (the engine during an offloaded handshake
/// step: the loop does not touch it until the step is back) to another thread.
// @unchecked Sendable: immutable (`let value`), and the value needs no lock: one thread at a time
// uses it (see above).
private struct Unchecked<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
