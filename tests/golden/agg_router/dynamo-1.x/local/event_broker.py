"""The event plane of a one-node deployment: a ZeroMQ XSUB/XPUB proxy listening on loopback only.

Dynamo 1.6.1 binds every direct ZMQ event publisher (KV events, load metrics) on 0.0.0.0, whatever
DYN_EVENT_PLANE_HOST says (that one only sets the advertised address). With DYN_ZMQ_BROKER_URL naming
this broker, publishers and subscribers connect to it instead, and no event socket listens beyond loopback.

Usage: event_broker.py HOST XSUB_PORT XPUB_PORT   (runs until stopped; pyzmq comes with Dynamo)
"""

import sys

import zmq


def main(argv):
    host, xsub_port, xpub_port = argv[1:4]
    context = zmq.Context()
    publishers = context.socket(zmq.XSUB)
    publishers.bind(f"tcp://{host}:{xsub_port}")
    subscribers = context.socket(zmq.XPUB)
    subscribers.bind(f"tcp://{host}:{xpub_port}")
    print(f"dyncc event broker: publishers -> {host}:{xsub_port}, subscribers -> {host}:{xpub_port}", flush=True)
    zmq.proxy(publishers, subscribers)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
