import { S3Client } from '@aws-sdk/client-s3';
import { devEnv } from './env.js';

/** An S3 client for the dev S3 server with its static test credentials. */
export function devS3Client(): S3Client {
  const env = devEnv();
  return new S3Client({
    endpoint: env.s3Endpoint,
    region: env.s3Region,
    forcePathStyle: true,
    credentials: { accessKeyId: env.s3AccessKeyId, secretAccessKey: env.s3SecretAccessKey },
    // Local servers vary in their support for the SDK's default CRC32 trailers; ask only when required.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}
