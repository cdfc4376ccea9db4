// Plain HTTP requests to a local test server, for what a client library would not send (wrong
// hosts and origins, bodies that are not JSON, oversized bodies).
import http from 'node:http';

export interface RawRequest {
  method?: string;
  headers?: Record<string, string | number>;
  body?: string | Buffer;
}

/** Resolves with the status and the whole body as text. */
export function rawRequest(port: number, pathname: string, { method = 'POST', headers = {}, body }: RawRequest = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: pathname, method, headers }, (res) => {
      let data = '';
      res.on('data', (c) => (data += c));
      res.on('end', () => resolve({ status: res.statusCode!, body: data }));
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}
