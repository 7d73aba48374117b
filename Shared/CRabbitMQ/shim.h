// Thin C helpers over librabbitmq (rabbitmq-c) for the Swift AMQP module.
//
// Everything here runs on the one thread that owns a connection. The helpers keep
// C-only concerns out of Swift: variadic `amqp_login`, field tables, frame dispatch
// and error text. Every helper that can fail writes a human-readable reason into `err`.
#ifndef LEAD_CRABBITMQ_SHIM_H
#define LEAD_CRABBITMQ_SHIM_H

#if __has_include(<rabbitmq-c/amqp.h>)
#include <rabbitmq-c/amqp.h>
#include <rabbitmq-c/tcp_socket.h>
#else
#include <amqp.h>
#include <amqp_tcp_socket.h>
#endif

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LP_CHANNEL 1

enum {
    LP_EV_NONE = 0,
    LP_EV_WAKE = 1,
    LP_EV_ACK = 2,
    LP_EV_NACK = 3,
    LP_EV_DELIVERY = 4,
    LP_EV_BLOCKED = 5,
    LP_EV_UNBLOCKED = 6,
    LP_EV_CLOSED = 7,
    LP_EV_ERROR = 8,
    LP_EV_CANCELLED = 9,
};

typedef struct {
    int kind;
    uint64_t delivery_tag;
    int multiple;
    int redelivered;
    int has_message;
    amqp_message_t message;
    char routing_key[256];
    char exchange[256];
    char consumer_tag[256];
    char text[512];
} lp_event;

static inline void lp_copy_bytes(char *dst, size_t cap, amqp_bytes_t src) {
    size_t n = src.len < cap - 1 ? src.len : cap - 1;
    if (n > 0 && src.bytes != NULL) memcpy(dst, src.bytes, n);
    dst[n] = 0;
}

/// Formats an RPC reply as text; returns 0 when the reply is normal.
static inline int lp_reply_error(amqp_rpc_reply_t r, const char *what, char *err, size_t errlen) {
    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        return 0;
    case AMQP_RESPONSE_NONE:
        snprintf(err, errlen, "%s: missing RPC reply", what);
        return -1;
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        snprintf(err, errlen, "%s: %s", what, amqp_error_string2(r.library_error));
        return -1;
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            amqp_connection_close_t *m = (amqp_connection_close_t *)r.reply.decoded;
            snprintf(err, errlen, "%s: connection closed by broker: %u %.*s", what, m->reply_code,
                     (int)m->reply_text.len, (char *)m->reply_text.bytes);
        } else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            amqp_channel_close_t *m = (amqp_channel_close_t *)r.reply.decoded;
            snprintf(err, errlen, "%s: channel closed by broker: %u %.*s", what, m->reply_code,
                     (int)m->reply_text.len, (char *)m->reply_text.bytes);
        } else {
            snprintf(err, errlen, "%s: unexpected server method 0x%08X", what, r.reply.id);
        }
        return -1;
    }
    snprintf(err, errlen, "%s: unknown reply", what);
    return -1;
}

/// Opens a TCP connection, logs in, opens channel 1 and enables publisher confirms.
static inline amqp_connection_state_t lp_connect(const char *host, int port, const char *user, const char *password,
                                                 const char *vhost, int heartbeat, int timeout_ms,
                                                 const char *connection_name, char *err, size_t errlen) {
    amqp_connection_state_t conn = amqp_new_connection();
    if (conn == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    amqp_socket_t *socket = amqp_tcp_socket_new(conn);
    if (socket == NULL) {
        snprintf(err, errlen, "cannot create socket");
        amqp_destroy_connection(conn);
        return NULL;
    }
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    int status = amqp_socket_open_noblock(socket, host, port, &tv);
    if (status != AMQP_STATUS_OK) {
        snprintf(err, errlen, "cannot connect to %s:%d: %s", host, port, amqp_error_string2(status));
        amqp_destroy_connection(conn);
        return NULL;
    }
    amqp_set_handshake_timeout(conn, &tv);
    amqp_set_rpc_timeout(conn, &tv);

    // librabbitmq 0.11 does not advertise connection.blocked: without it the broker silently stops reading
    // a publisher during a resource alarm instead of telling it (and ingest could not answer 503).
    amqp_table_entry_t capabilities[1];
    capabilities[0].key = amqp_cstring_bytes("connection.blocked");
    capabilities[0].value.kind = AMQP_FIELD_KIND_BOOLEAN;
    capabilities[0].value.value.boolean = 1;
    amqp_table_entry_t props[2];
    props[0].key = amqp_cstring_bytes("connection_name");
    props[0].value.kind = AMQP_FIELD_KIND_UTF8;
    props[0].value.value.bytes = amqp_cstring_bytes(connection_name);
    props[1].key = amqp_cstring_bytes("capabilities");
    props[1].value.kind = AMQP_FIELD_KIND_TABLE;
    props[1].value.value.table.num_entries = 1;
    props[1].value.value.table.entries = capabilities;
    amqp_table_t client_props = {2, props};

    amqp_rpc_reply_t r = amqp_login_with_properties(conn, vhost, 0, 131072, heartbeat, &client_props,
                                                    AMQP_SASL_METHOD_PLAIN, user, password);
    if (lp_reply_error(r, "login", err, errlen) != 0) {
        amqp_destroy_connection(conn);
        return NULL;
    }
    amqp_channel_open(conn, LP_CHANNEL);
    if (lp_reply_error(amqp_get_rpc_reply(conn), "channel.open", err, errlen) != 0) {
        amqp_destroy_connection(conn);
        return NULL;
    }
    amqp_confirm_select(conn, LP_CHANNEL);
    if (lp_reply_error(amqp_get_rpc_reply(conn), "confirm.select", err, errlen) != 0) {
        amqp_destroy_connection(conn);
        return NULL;
    }
    return conn;
}

static inline void lp_close(amqp_connection_state_t conn, int graceful) {
    if (conn == NULL) return;
    if (graceful) {
        struct timeval tv = {1, 0};
        amqp_set_rpc_timeout(conn, &tv);
        amqp_channel_close(conn, LP_CHANNEL, AMQP_REPLY_SUCCESS);
        amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    }
    amqp_destroy_connection(conn);
}

static inline int lp_exchange_declare(amqp_connection_state_t conn, const char *name, const char *type, char *err,
                                      size_t errlen) {
    amqp_exchange_declare(conn, LP_CHANNEL, amqp_cstring_bytes(name), amqp_cstring_bytes(type), 0, 1, 0, 0,
                          amqp_empty_table);
    char what[300];
    snprintf(what, sizeof what, "exchange.declare %s", name);
    return lp_reply_error(amqp_get_rpc_reply(conn), what, err, errlen);
}

/// Declares a durable queue. `queue_type` may be NULL (classic); `dlx`/`dlrk` NULL for none;
/// `delivery_limit` <= 0 for none (quorum queues only); `expires_ms` > 0 deletes the queue once unused that long.
static inline int lp_queue_declare(amqp_connection_state_t conn, const char *name, const char *queue_type,
                                   const char *dlx, const char *dlrk, int delivery_limit, int expires_ms, char *err,
                                   size_t errlen) {
    amqp_table_entry_t entries[5];
    int n = 0;
    if (queue_type != NULL) {
        entries[n].key = amqp_cstring_bytes("x-queue-type");
        entries[n].value.kind = AMQP_FIELD_KIND_UTF8;
        entries[n].value.value.bytes = amqp_cstring_bytes(queue_type);
        n++;
    }
    if (dlx != NULL) {
        entries[n].key = amqp_cstring_bytes("x-dead-letter-exchange");
        entries[n].value.kind = AMQP_FIELD_KIND_UTF8;
        entries[n].value.value.bytes = amqp_cstring_bytes(dlx);
        n++;
    }
    if (dlrk != NULL) {
        entries[n].key = amqp_cstring_bytes("x-dead-letter-routing-key");
        entries[n].value.kind = AMQP_FIELD_KIND_UTF8;
        entries[n].value.value.bytes = amqp_cstring_bytes(dlrk);
        n++;
    }
    if (delivery_limit > 0) {
        entries[n].key = amqp_cstring_bytes("x-delivery-limit");
        entries[n].value.kind = AMQP_FIELD_KIND_I32;
        entries[n].value.value.i32 = delivery_limit;
        n++;
    }
    if (expires_ms > 0) {
        entries[n].key = amqp_cstring_bytes("x-expires");
        entries[n].value.kind = AMQP_FIELD_KIND_I32;
        entries[n].value.value.i32 = expires_ms;
        n++;
    }
    amqp_table_t args = {n, entries};
    // A queue that expires (a per-process feed) is transient: when its node dies it goes with it, instead of
    // a durable queue that cannot be redeclared until that node is back.
    int durable = expires_ms > 0 ? 0 : 1;
    amqp_queue_declare(conn, LP_CHANNEL, amqp_cstring_bytes(name), 0, durable, 0, 0, args);
    char what[300];
    snprintf(what, sizeof what, "queue.declare %s", name);
    return lp_reply_error(amqp_get_rpc_reply(conn), what, err, errlen);
}

static inline int lp_queue_bind(amqp_connection_state_t conn, const char *queue, const char *exchange,
                                const char *routing_key, char *err, size_t errlen) {
    amqp_queue_bind(conn, LP_CHANNEL, amqp_cstring_bytes(queue), amqp_cstring_bytes(exchange),
                    amqp_cstring_bytes(routing_key), amqp_empty_table);
    char what[600];
    snprintf(what, sizeof what, "queue.bind %s to %s (%s)", queue, exchange, routing_key);
    return lp_reply_error(amqp_get_rpc_reply(conn), what, err, errlen);
}

/// Purges a queue; returns the number of messages purged or -1.
static inline long lp_queue_purge(amqp_connection_state_t conn, const char *queue, char *err, size_t errlen) {
    amqp_queue_purge_ok_t *ok = amqp_queue_purge(conn, LP_CHANNEL, amqp_cstring_bytes(queue));
    if (lp_reply_error(amqp_get_rpc_reply(conn), "queue.purge", err, errlen) != 0) return -1;
    return ok ? (long)ok->message_count : 0;
}

/// Declares a queue passively; returns its message count or -1 (and the channel is then closed).
static inline long lp_queue_message_count(amqp_connection_state_t conn, const char *queue, char *err,
                                          size_t errlen) {
    amqp_queue_declare_ok_t *ok =
        amqp_queue_declare(conn, LP_CHANNEL, amqp_cstring_bytes(queue), 1, 0, 0, 0, amqp_empty_table);
    if (lp_reply_error(amqp_get_rpc_reply(conn), "queue.declare passive", err, errlen) != 0) return -1;
    return ok ? (long)ok->message_count : 0;
}

static inline int lp_queue_delete(amqp_connection_state_t conn, const char *queue, char *err, size_t errlen) {
    amqp_queue_delete(conn, LP_CHANNEL, amqp_cstring_bytes(queue), 0, 0);
    return lp_reply_error(amqp_get_rpc_reply(conn), "queue.delete", err, errlen);
}

static inline int lp_consume(amqp_connection_state_t conn, const char *queue, const char *tag, int prefetch,
                             char *err, size_t errlen) {
    amqp_basic_qos(conn, LP_CHANNEL, 0, (uint16_t)prefetch, 0);
    if (lp_reply_error(amqp_get_rpc_reply(conn), "basic.qos", err, errlen) != 0) return -1;
    amqp_basic_consume(conn, LP_CHANNEL, amqp_cstring_bytes(queue), amqp_cstring_bytes(tag), 0, 0, 0,
                       amqp_empty_table);
    char what[300];
    snprintf(what, sizeof what, "basic.consume %s", queue);
    return lp_reply_error(amqp_get_rpc_reply(conn), what, err, errlen);
}

/* Big-endian stores for frame encoding. */
static inline void lp_put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void lp_put32(uint8_t *p, uint32_t v) { lp_put16(p, (uint16_t)(v >> 16)); lp_put16(p + 2, (uint16_t)v); }
static inline void lp_put64(uint8_t *p, uint64_t v) { lp_put32(p, (uint32_t)(v >> 32)); lp_put32(p + 4, (uint32_t)v); }

/*
 * Encodes one basic.publish on LP_CHANNEL into buf as amqp_basic_publish would send it: the method frame, the
 * content header frame, and the body in frames of at most the connection's frame_max. The caller sends many
 * such publishes with one lp_send_all; amqp_basic_publish makes a send(2) per frame, three a message.
 * headers: header_count entries packed as key NUL, then a kind byte ('S' string, 'I' 64-bit integer in decimal)
 * and the value NUL.
 * Returns the bytes written; -1 when buf is too small (retry with more room); -2 when the message cannot be
 * encoded at all (a name or property over 255 bytes), with err set.
 */
static inline long lp_encode_publish(amqp_connection_state_t conn, uint8_t *buf, size_t cap, const char *exchange,
                                     const char *routing_key, const void *body, size_t body_len,
                                     const char *message_id, const char *content_type, int persistent,
                                     const char *headers, int header_count, char *err, size_t errlen) {
    enum { HEADER = 7, FOOTER = 1 };
    if (strlen(exchange) > 255 || strlen(routing_key) > 255 || (message_id && strlen(message_id) > 255) ||
        (content_type && strlen(content_type) > 255)) {
        snprintf(err, errlen, "basic.publish: a name or property is over 255 bytes");
        return -2;
    }
    size_t frame_max = (size_t)amqp_get_frame_max(conn);
    if (frame_max <= HEADER + FOOTER) frame_max = 131072; /* 0: no limit negotiated */
    size_t chunk = frame_max - HEADER - FOOTER;
    size_t pos = 0;

    /* Method frame. */
    if (cap < HEADER + 4 + FOOTER) return -1;
    amqp_basic_publish_t method;
    memset(&method, 0, sizeof method);
    method.exchange = amqp_cstring_bytes(exchange);
    method.routing_key = amqp_cstring_bytes(routing_key);
    amqp_bytes_t room = {cap - HEADER - 4 - FOOTER, buf + HEADER + 4};
    int n = amqp_encode_method(AMQP_BASIC_PUBLISH_METHOD, &method, room);
    if (n < 0) return -1;
    buf[0] = AMQP_FRAME_METHOD;
    lp_put16(buf + 1, LP_CHANNEL);
    lp_put32(buf + 3, (uint32_t)(n + 4));
    lp_put32(buf + HEADER, AMQP_BASIC_PUBLISH_METHOD);
    pos = HEADER + 4 + (size_t)n;
    buf[pos++] = AMQP_FRAME_END;

    /* Content header frame. */
    amqp_basic_properties_t props;
    memset(&props, 0, sizeof props);
    props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
    props.delivery_mode = persistent ? AMQP_DELIVERY_PERSISTENT : AMQP_DELIVERY_NONPERSISTENT;
    if (content_type != NULL) {
        props._flags |= AMQP_BASIC_CONTENT_TYPE_FLAG;
        props.content_type = amqp_cstring_bytes(content_type);
    }
    if (message_id != NULL) {
        props._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
        props.message_id = amqp_cstring_bytes(message_id);
    }
    amqp_table_entry_t entries[16];
    if (header_count > 16) header_count = 16;
    if (header_count > 0) {
        const char *p = headers;
        for (int i = 0; i < header_count; i++) {
            entries[i].key = amqp_cstring_bytes(p);
            p += strlen(p) + 1;
            if (*p == 'I') {
                entries[i].value.kind = AMQP_FIELD_KIND_I64;
                entries[i].value.value.i64 = strtoll(p + 1, NULL, 10);
            } else {
                entries[i].value.kind = AMQP_FIELD_KIND_UTF8;
                entries[i].value.value.bytes = amqp_cstring_bytes(p + 1);
            }
            p += strlen(p) + 1;
        }
        props._flags |= AMQP_BASIC_HEADERS_FLAG;
        props.headers.num_entries = header_count;
        props.headers.entries = entries;
    }
    if (cap < pos + HEADER + 12 + FOOTER) return -1;
    room.bytes = buf + pos + HEADER + 12;
    room.len = cap - pos - HEADER - 12 - FOOTER;
    n = amqp_encode_properties(AMQP_BASIC_CLASS, &props, room);
    if (n < 0) return -1;
    buf[pos] = AMQP_FRAME_HEADER;
    lp_put16(buf + pos + 1, LP_CHANNEL);
    lp_put32(buf + pos + 3, (uint32_t)(n + 12));
    lp_put16(buf + pos + HEADER, AMQP_BASIC_CLASS);
    lp_put16(buf + pos + HEADER + 2, 0);
    lp_put64(buf + pos + HEADER + 4, (uint64_t)body_len);
    pos += HEADER + 12 + (size_t)n;
    buf[pos++] = AMQP_FRAME_END;

    /* Body frames. */
    for (size_t done = 0; done < body_len;) {
        size_t part = body_len - done < chunk ? body_len - done : chunk;
        if (cap < pos + HEADER + part + FOOTER) return -1;
        buf[pos] = AMQP_FRAME_BODY;
        lp_put16(buf + pos + 1, LP_CHANNEL);
        lp_put32(buf + pos + 3, (uint32_t)part);
        memcpy(buf + pos + HEADER, (const uint8_t *)body + done, part);
        pos += HEADER + part;
        buf[pos++] = AMQP_FRAME_END;
        done += part;
    }
    return (long)pos;
}

/* Sends len bytes on the connection's socket, waiting while its send buffer is full, for timeout_ms at most in
   all: a broker that stops reading (a resource alarm, a stall) must not hold the connection's thread, which also
   reads the confirms and expires the unconfirmed, for longer than a publish may wait for its confirm. */
static inline int lp_send_all(amqp_connection_state_t conn, const uint8_t *buf, size_t len, int timeout_ms, char *err,
                              size_t errlen) {
    int fd = amqp_get_sockfd(conn);
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            long waited = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
            if (waited < timeout_ms) {
                struct pollfd pfd = {fd, POLLOUT, 0};
                (void)poll(&pfd, 1, (int)(timeout_ms - waited < 100 ? timeout_ms - waited : 100));
                continue;
            }
            snprintf(err, errlen, "basic.publish: the broker read nothing for %d ms", timeout_ms);
            return -1;
        }
        snprintf(err, errlen, "basic.publish: send: %s", n < 0 ? strerror(errno) : "nothing sent");
        return -1;
    }
    return 0;
}

/* Names the calling thread (at most 15 bytes are kept), as top and perf show it. prctl is variadic. */
static inline void lp_name_thread(const char *name) {
    prctl(PR_SET_NAME, (unsigned long)name, 0, 0, 0);
}

static inline int lp_ack(amqp_connection_state_t conn, uint64_t tag, int multiple) {
    return amqp_basic_ack(conn, LP_CHANNEL, tag, multiple);
}

static inline int lp_nack(amqp_connection_state_t conn, uint64_t tag, int multiple, int requeue) {
    return amqp_basic_nack(conn, LP_CHANNEL, tag, multiple, requeue);
}

/// Waits up to `timeout_ms` for the socket or `wakefd`, then decodes at most one frame into `ev`.
/// Returns `ev->kind`. A delivery carries its message in `ev->message`: release it with `lp_event_release`.
static inline int lp_next_event(amqp_connection_state_t conn, int wakefd, int timeout_ms, lp_event *ev) {
    ev->kind = LP_EV_NONE;
    ev->has_message = 0;
    ev->text[0] = 0;
    int woke = 0;
    if (!amqp_frames_enqueued(conn) && !amqp_data_in_buffer(conn)) {
        struct pollfd fds[2];
        fds[0].fd = amqp_get_sockfd(conn);
        fds[0].events = POLLIN;
        fds[0].revents = 0;
        fds[1].fd = wakefd;
        fds[1].events = POLLIN;
        fds[1].revents = 0;
        int r = poll(fds, wakefd >= 0 ? 2 : 1, timeout_ms);
        if (r < 0 && errno != EINTR) {
            snprintf(ev->text, sizeof ev->text, "poll: %s", strerror(errno));
            return ev->kind = LP_EV_ERROR;
        }
        if (wakefd >= 0 && (fds[1].revents & POLLIN)) {
            uint64_t v;
            ssize_t ignored = read(wakefd, &v, sizeof v);
            (void)ignored;
            woke = 1;
        }
    }
    // Always give the library a turn: it sends and checks heartbeats inside frame waits.
    struct timeval zero = {0, 0};
    amqp_frame_t frame;
    int status = amqp_simple_wait_frame_noblock(conn, &frame, &zero);
    if (status == AMQP_STATUS_TIMEOUT) return ev->kind = woke ? LP_EV_WAKE : LP_EV_NONE;
    if (status != AMQP_STATUS_OK) {
        snprintf(ev->text, sizeof ev->text, "connection lost: %s", amqp_error_string2(status));
        return ev->kind = LP_EV_ERROR;
    }
    if (frame.frame_type != AMQP_FRAME_METHOD) return ev->kind = LP_EV_NONE;
    switch (frame.payload.method.id) {
    case AMQP_BASIC_ACK_METHOD: {
        amqp_basic_ack_t *m = (amqp_basic_ack_t *)frame.payload.method.decoded;
        ev->delivery_tag = m->delivery_tag;
        ev->multiple = m->multiple;
        return ev->kind = LP_EV_ACK;
    }
    case AMQP_BASIC_NACK_METHOD: {
        amqp_basic_nack_t *m = (amqp_basic_nack_t *)frame.payload.method.decoded;
        ev->delivery_tag = m->delivery_tag;
        ev->multiple = m->multiple;
        return ev->kind = LP_EV_NACK;
    }
    case AMQP_BASIC_DELIVER_METHOD: {
        amqp_basic_deliver_t *m = (amqp_basic_deliver_t *)frame.payload.method.decoded;
        ev->delivery_tag = m->delivery_tag;
        ev->redelivered = m->redelivered;
        lp_copy_bytes(ev->routing_key, sizeof ev->routing_key, m->routing_key);
        lp_copy_bytes(ev->exchange, sizeof ev->exchange, m->exchange);
        lp_copy_bytes(ev->consumer_tag, sizeof ev->consumer_tag, m->consumer_tag);
        amqp_rpc_reply_t r = amqp_read_message(conn, frame.channel, &ev->message, 0);
        if (lp_reply_error(r, "reading delivery", ev->text, sizeof ev->text) != 0) return ev->kind = LP_EV_ERROR;
        ev->has_message = 1;
        return ev->kind = LP_EV_DELIVERY;
    }
    case AMQP_BASIC_RETURN_METHOD: {
        amqp_message_t message;
        amqp_rpc_reply_t r = amqp_read_message(conn, frame.channel, &message, 0);
        if (lp_reply_error(r, "reading returned message", ev->text, sizeof ev->text) != 0)
            return ev->kind = LP_EV_ERROR;
        amqp_destroy_message(&message);
        return ev->kind = LP_EV_NONE;
    }
    case AMQP_BASIC_CANCEL_METHOD:
        snprintf(ev->text, sizeof ev->text, "consumer cancelled by broker");
        return ev->kind = LP_EV_CANCELLED;
    case AMQP_CONNECTION_BLOCKED_METHOD:
        return ev->kind = LP_EV_BLOCKED;
    case AMQP_CONNECTION_UNBLOCKED_METHOD:
        return ev->kind = LP_EV_UNBLOCKED;
    case AMQP_CHANNEL_CLOSE_METHOD: {
        amqp_channel_close_t *m = (amqp_channel_close_t *)frame.payload.method.decoded;
        snprintf(ev->text, sizeof ev->text, "channel closed by broker: %u %.*s", m->reply_code,
                 (int)m->reply_text.len, (char *)m->reply_text.bytes);
        amqp_channel_close_ok_t ok;
        amqp_send_method(conn, frame.channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
        return ev->kind = LP_EV_CLOSED;
    }
    case AMQP_CONNECTION_CLOSE_METHOD: {
        amqp_connection_close_t *m = (amqp_connection_close_t *)frame.payload.method.decoded;
        snprintf(ev->text, sizeof ev->text, "connection closed by broker: %u %.*s", m->reply_code,
                 (int)m->reply_text.len, (char *)m->reply_text.bytes);
        amqp_connection_close_ok_t ok;
        amqp_send_method(conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
        return ev->kind = LP_EV_CLOSED;
    }
    default:
        return ev->kind = LP_EV_NONE;
    }
}

static inline void lp_event_release(amqp_connection_state_t conn, lp_event *ev) {
    if (ev->has_message) {
        amqp_destroy_message(&ev->message);
        ev->has_message = 0;
    }
    amqp_maybe_release_buffers(conn);
}

static inline const void *lp_event_body(const lp_event *ev) { return ev->message.body.bytes; }
static inline size_t lp_event_body_len(const lp_event *ev) { return ev->message.body.len; }

/// Copies the delivery's message id into `out` (empty when absent).
static inline void lp_event_message_id(const lp_event *ev, char *out, size_t cap) {
    out[0] = 0;
    if (ev->message.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG)
        lp_copy_bytes(out, cap, ev->message.properties.message_id);
}

static inline int lp_event_header_count(const lp_event *ev) {
    if (!(ev->message.properties._flags & AMQP_BASIC_HEADERS_FLAG)) return 0;
    return ev->message.properties.headers.num_entries;
}

/// Reads header `i`: its key into `key`; returns 'S' with the value in `str`, 'I' with it in `*num`,
/// or 0 for kinds the Swift side does not need.
static inline int lp_event_header(const lp_event *ev, int i, char *key, size_t keycap, char *str, size_t strcap,
                                  int64_t *num) {
    amqp_table_entry_t *e = &ev->message.properties.headers.entries[i];
    lp_copy_bytes(key, keycap, e->key);
    str[0] = 0;
    switch (e->value.kind) {
    case AMQP_FIELD_KIND_UTF8:
    case AMQP_FIELD_KIND_BYTES:
        lp_copy_bytes(str, strcap, e->value.value.bytes);
        return 'S';
    case AMQP_FIELD_KIND_I8: *num = e->value.value.i8; return 'I';
    case AMQP_FIELD_KIND_U8: *num = e->value.value.u8; return 'I';
    case AMQP_FIELD_KIND_I16: *num = e->value.value.i16; return 'I';
    case AMQP_FIELD_KIND_U16: *num = e->value.value.u16; return 'I';
    case AMQP_FIELD_KIND_I32: *num = e->value.value.i32; return 'I';
    case AMQP_FIELD_KIND_U32: *num = e->value.value.u32; return 'I';
    case AMQP_FIELD_KIND_I64: *num = e->value.value.i64; return 'I';
    case AMQP_FIELD_KIND_U64: *num = (int64_t)e->value.value.u64; return 'I';
    default: return 0;
    }
}

static inline int lp_eventfd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

static inline void lp_wake(int fd) {
    uint64_t one = 1;
    ssize_t ignored = write(fd, &one, sizeof one);
    (void)ignored;
}

#endif
