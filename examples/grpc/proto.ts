/**
 * Loads calculate.proto with @grpc/proto-loader and gives typed handles to
 * the Calculate client constructor and service definition.
 */
import { loadPackageDefinition, Metadata as GrpcMetadata, type Client, type ClientReadableStream, type ClientDuplexStream, type ClientWritableStream, type CallOptions, type ChannelCredentials, type ChannelOptions, type Metadata, type ServiceDefinition, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { fileURLToPath } from 'node:url';

export interface Operands { x: number; y: number }
export interface SeriesRequest extends Operands { count: number }
export interface Result { value: number; version: string }

type Callback<T> = (err: ServiceError | null, value?: T) => void;

/** The generated client, typed for the four call shapes. */
export interface CalculateClient extends Client {
  Calculate(req: Operands, metadata: Metadata, options: CallOptions, cb: Callback<Result>): unknown;
  Calculate(req: Operands, metadata: Metadata, cb: Callback<Result>): unknown;
  Calculate(req: Operands, cb: Callback<Result>): unknown;
  Series(req: SeriesRequest, metadata?: Metadata, options?: CallOptions): ClientReadableStream<Result>;
  Fold(metadata: Metadata, options: CallOptions, cb: Callback<Result>): ClientWritableStream<Operands>;
  Fold(cb: Callback<Result>): ClientWritableStream<Operands>;
  Pipe(metadata?: Metadata, options?: CallOptions): ClientDuplexStream<Operands, Result>;
}

export type CalculateClientConstructor = new (target: string, credentials: ChannelCredentials, options?: ChannelOptions) => CalculateClient;

const definition = loadSync(fileURLToPath(new URL('./calculate.proto', import.meta.url)), { keepCase: true, longs: Number, defaults: true });
const pkg = loadPackageDefinition(definition) as unknown as { calculate: { Calculate: CalculateClientConstructor & { service: ServiceDefinition } } };

/** `new CalculateClient(target, creds, options)`. */
export const CalculateClient: CalculateClientConstructor = pkg.calculate.Calculate;
/** The service definition for `server.addService`. */
export const CalculateService: ServiceDefinition = pkg.calculate.Calculate.service;

/** Promisified unary call. */
export function calculate(client: CalculateClient, req: Operands, metadata?: Metadata, options: CallOptions = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const cb: Callback<Result> = (err, value) => (err ? reject(err) : resolve(value!));
    client.Calculate(req, metadata ?? new GrpcMetadata(), options, cb);
  });
}
