import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// The end-to-end run's web tier: posts event bodies to lead-ingest over kept-alive HTTP/1.1 connections, one
/// request at a time on each, opening another connection only when every open one is busy.
///
/// Written on NIO directly rather than with AsyncHTTPClient because the benchmark shares the machine's 2 cores
/// with the pipeline it measures: AsyncHTTPClient's request machinery (its connection pool's and request's state
/// machines, the body as an async sequence, tracing) was most of the benchmark's CPU in that run, ~1.1 ms per
/// lead against lead-ingest's ~0.7 ms for the same requests.
final class IngestSender: Sendable {
    /// What a post came to: the status and when the response head arrived.
    struct Answer: Sendable {
        var status: HTTPResponseStatus
        var headAt: Date
    }

    private let host: String
    private let port: Int
    private let head: HTTPRequestHead
    private let timeout: TimeAmount
    private let idle = Mutex<[any Channel]>([])
    private let opened = Atomic<Int>(0)

    init(host: String, port: Int, path: String, apiKey: String, timeout: TimeAmount = .seconds(10)) {
        self.host = host
        self.port = port
        self.timeout = timeout
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: "\(host):\(port)")
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Authorization", value: "Bearer \(apiKey)")
        head = HTTPRequestHead(version: .http1_1, method: .POST, uri: path, headers: headers)
    }

    /// Connections opened so far (kept alive and reused, so about the most requests ever in flight at once).
    var connectionsOpened: Int { opened.load(ordering: .relaxed) }

    /// Posts `body`; nil if no answer came (connection refused or lost, or no answer within the timeout).
    func post(_ body: String) async -> Answer? {
        let channel: any Channel
        if let kept = idle.withLock({ $0.popLast() }) {
            channel = kept
        } else {
            guard let new = try? await connect() else { return nil }
            channel = new
        }
        let answered = channel.eventLoop.makePromise(of: Answer.self)
        let timeout = channel.eventLoop.scheduleTask(in: self.timeout) {
            answered.fail(BenchError("no answer from lead-ingest within \(self.timeout)"))
        }
        // A kept connection the server has closed meanwhile fails the write, and with it the post, at once.
        let written = channel.eventLoop.makePromise(of: Void.self)
        written.futureResult.whenFailure { answered.fail($0) }
        channel.writeAndFlush(PostHandler.Post(body: ByteBuffer(string: body), answered: answered), promise: written)
        do {
            let answer = try await answered.futureResult.get()
            timeout.cancel()
            idle.withLock { $0.append(channel) }
            return answer
        } catch {
            timeout.cancel()
            channel.close(promise: nil)
            return nil
        }
    }

    /// Closes the kept connections.
    func close() async {
        for channel in idle.withLock({ channels in defer { channels.removeAll() }; return channels }) {
            try? await channel.close()
        }
    }

    private func connect() async throws -> any Channel {
        let head = self.head
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(PostHandler(head: head))
                }
            }
            .connect(host: host, port: port)
            .get()
        opened.add(1, ordering: .relaxed)
        return channel
    }
}

/// One request at a time on its connection: writes a `Post` as head, body and end, and fulfils its promise when
/// the whole response has arrived. A connection that fails or closes fails the request in flight.
private final class PostHandler: ChannelDuplexHandler {
    struct Post: Sendable {
        var body: ByteBuffer
        var answered: EventLoopPromise<IngestSender.Answer>
    }

    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = Post
    typealias OutboundOut = HTTPClientRequestPart

    private let head: HTTPRequestHead
    private var waiting: EventLoopPromise<IngestSender.Answer>?
    private var answer: IngestSender.Answer?

    init(head: HTTPRequestHead) {
        self.head = head
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let post = unwrapOutboundIn(data)
        waiting = post.answered
        var head = self.head
        head.headers.add(name: "Content-Length", value: "\(post.body.readableBytes)")
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(post.body))), promise: nil)
        context.write(wrapOutboundOut(.end(nil)), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let response):
            answer = IngestSender.Answer(status: response.status, headAt: Date())
        case .body:
            break
        case .end:
            if let answer, let waiting {
                self.waiting = nil
                self.answer = nil
                waiting.succeed(answer)
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        waiting?.fail(error)
        waiting = nil
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        waiting?.fail(ChannelError.ioOnClosedChannel)
        waiting = nil
        context.fireChannelInactive()
    }
}
